"""How messages Twilio has no native form for are rendered: Content Templates and numbered text.

* A ``Template`` (and ``Buttons``/``ListMenu`` with a ``content_sid``) is a Content Template:
  ``ContentSid`` plus ``ContentVariables``, a JSON string (docs/wire.md §9).
* ``Buttons``/``ListMenu`` without a ``content_sid`` become numbered text (``1. Yes``);
  ``Buttons.match()`` maps the user's answer back to the id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ...messages import CONTENT_VARIABLE_MAX, Buttons, ListMenu, MessageError, Template

__all__ = ["content_form", "content_variables_json", "numbered_text", "template_variables"]

Form = list[tuple[str, str]]


def template_variables(template: Template) -> dict[str, str]:
    """The variables sent to Twilio: ``content_variables``, or the body values keyed ``"1"``,
    ``"2"``... (named bodies keep their names). Currency/DateTime use their ``fallback_value``."""
    if template.content_variables is not None:
        return dict(template.content_variables)
    if isinstance(template.body, Mapping):
        items = list(template.body.items())
    else:
        items = [(str(i + 1), v) for i, v in enumerate(template.body)]
    out: dict[str, str] = {}
    for key, value in items:
        out[key] = value if isinstance(value, str) else value.fallback_value
    for key, text in out.items():
        if not text:
            raise MessageError(f"Template.body[{key!r}]", "is empty; Twilio rejects empty variables")
        if len(text) > CONTENT_VARIABLE_MAX:
            raise MessageError(
                f"Template.content_variables[{key!r}]",
                f"is {len(text)} characters; the limit is {CONTENT_VARIABLE_MAX}",
            )
    return out


def content_variables_json(variables: Mapping[str, str] | None) -> str | None:
    """``ContentVariables`` as the JSON string Twilio expects (``None`` when empty)."""
    if not variables:
        return None
    return json.dumps(dict(variables), ensure_ascii=False, separators=(",", ":"))


def content_form(content_sid: str, variables: str | None) -> Form:
    """The form fields of a Content Template send."""
    form: Form = [("ContentSid", content_sid)]
    if variables is not None:
        form.append(("ContentVariables", variables))
    return form


def _numbered(lines: list[str], options: Sequence[tuple[str, str | None]], start: int) -> int:
    number = start
    for title, description in options:
        line = f"{number}. {title}"
        if description:
            line += f" — {description}"
        lines.append(line)
        number += 1
    return number


def numbered_text(message: Buttons | ListMenu) -> str:
    """Buttons or a list menu as plain numbered text (Twilio without a Content Template).

    Example: ``Buttons("Confirm?", ["Yes", "No"], footer="Thanks")`` becomes
    ``"Confirm?\\n\\n1. Yes\\n2. No\\n\\n_Thanks_"``. The user answers with a number or a title;
    ``message.match(answer)`` gives the id.
    """
    lines: list[str] = []
    if isinstance(message.header, str):
        lines += [f"*{message.header}*", ""]
    lines += [message.body, ""]
    if isinstance(message, Buttons):
        _numbered(lines, [(b.title, None) for b in message.items], 1)
    else:
        number = 1
        for index, section in enumerate(message.section_list):
            if section.title:
                if index:
                    lines.append("")
                lines.append(f"*{section.title}*")
            number = _numbered(lines, [(r.title, r.description) for r in section.rows], number)
    if message.footer:
        lines += ["", f"_{message.footer}_"]
    return "\n".join(lines)
