"""How messages Twilio has no plain Messages-API form for are rendered: Content Templates.

* A ``Template`` (and any message with a ``content_sid``) is a Content Template: ``ContentSid``
  plus ``ContentVariables``, a JSON string (docs/wire.md §9).
* ``Buttons``, ``ListMenu`` and ``CtaUrl`` without a ``content_sid`` become session content
  created on demand (:func:`session_content`: ``twilio/quick-reply``, ``twilio/list-picker``,
  ``twilio/call-to-action``), cached by :func:`content_key`; when the Content API refuses, they
  are numbered text (``1. Yes``) and ``Buttons.match()`` maps the typed answer back to the id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...messages import CONTENT_VARIABLE_MAX, Buttons, CtaUrl, ListMenu, Media, MessageError, Template

__all__ = [
    "SessionContent",
    "content_form",
    "content_key",
    "content_variables_json",
    "cta_text",
    "geo_uri",
    "numbered_text",
    "session_content",
    "template_variables",
]

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


# --------------------------------------------------------------------------------------------
# Session content created on demand (docs/wire.md §9.1)
# --------------------------------------------------------------------------------------------
#: Content types WhatsApp accepts inside the 24-hour session without an approval.
QUICK_REPLY = "twilio/quick-reply"
LIST_PICKER = "twilio/list-picker"
CALL_TO_ACTION = "twilio/call-to-action"


def _framed_body(message: Buttons | ListMenu | CtaUrl) -> str:
    """Body text with a text header and the footer folded in (these types have no header or
    footer of their own)."""
    parts: list[str] = []
    if isinstance(message.header, str):
        parts.append(f"*{message.header}*")
    parts.append(message.body)
    if message.footer:
        parts.append(f"_{message.footer}_")
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class SessionContent:
    """On-demand content for one message: ``content`` is the Content API body, the same for
    every message with these buttons (the text is the variable ``{{1}}``, so personalised bodies
    share one content); ``variables`` fill it for this message (``ContentVariables``)."""

    content: dict[str, Any]
    variables: dict[str, str]

    @property
    def key(self) -> str:
        """The cache key: a hash of :attr:`content`."""
        return content_key(self.content)


def session_content(message: Any) -> SessionContent | None:
    """The Content API body that renders ``message`` as real WhatsApp buttons, a list or a URL
    button — or ``None`` when it has no on-demand form (a ``content_sid`` given, a media header).

    A ``twilio/text`` twin is included: Twilio sends it where the rich type cannot go.
    """
    if not isinstance(message, (Buttons, ListMenu, CtaUrl)) or message.content_sid:
        return None
    if isinstance(message.header, Media):
        return None  # a media header needs an approved twilio/card; numbered text carries it
    rich: dict[str, Any]
    lines: list[str] = []
    if isinstance(message, Buttons):
        kind = QUICK_REPLY
        rich = {"body": "{{1}}", "actions": [{"title": b.title, "id": b.id} for b in message.items]}
        _numbered(lines, [(b.title, None) for b in message.items], 1)
    elif isinstance(message, ListMenu):
        kind = LIST_PICKER
        items = []
        for row in message.rows:
            item = {"item": row.title, "id": row.id}
            if row.description:
                item["description"] = row.description
            items.append(item)
        rich = {"body": "{{1}}", "button": message.button, "items": items}
        _numbered(lines, [(r.title, r.description) for r in message.rows], 1)
    else:
        kind = CALL_TO_ACTION
        rich = {
            "body": "{{1}}",
            "actions": [{"type": "URL", "title": message.display_text, "url": message.url}],
        }
        lines.append(f"{message.display_text}: {message.url}")
    twin = "{{1}}\n\n" + "\n".join(lines)
    content = {
        "language": "en",
        "variables": {"1": "text"},  # a sample: the Content API wants one per variable
        "types": {kind: rich, "twilio/text": {"body": twin}},
    }
    return SessionContent(content, {"1": _framed_body(message)})


def content_key(content: Mapping[str, Any]) -> str:
    """A stable hash of a Content API body: equal content, equal key, in every process."""
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def cta_text(message: CtaUrl) -> str:
    """A URL button as text: the body, then the label and the link."""
    return f"{_framed_body(message)}\n\n{message.display_text}: {message.url}"


def geo_uri(latitude: float, longitude: float) -> str:
    """``geo:lat,lon`` in plain decimals: ``repr`` writes small numbers as ``1.23e-05``, which is
    not a geo URI (RFC 5870 allows digits, sign and point only)."""
    return f"geo:{_decimal(latitude)},{_decimal(longitude)}"


def _decimal(value: float) -> str:
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
