"""One template definition, written once in code or in a YAML/JSON file, for both providers.

Example::

    from eki_whatsapp.templates import HeaderMedia, QuickReply, TemplateDefinition, UrlButton

    shipped = TemplateDefinition(
        name="order_shipped",
        language="en_US",
        category="UTILITY",
        header=HeaderMedia("video", "https://cdn.example.com/clip.mp4"),
        body="Hi {{1}}, your order {{2}} is on its way.",
        examples=["Sheena", "8127"],
        footer="Eki shop",
        buttons=[QuickReply("Stop updates"), UrlButton("Track", "https://example.com/t/{{1}}", "8127")],
    )

The same definition as a file (``templates.yaml``; JSON has the same keys)::

    - name: order_shipped
      language: en_US
      category: UTILITY
      header: {type: video, url: "https://cdn.example.com/clip.mp4"}
      body: "Hi {{1}}, your order {{2}} is on its way."
      examples: ["Sheena", "8127"]
      footer: Eki shop
      buttons:
        - {type: quick_reply, text: Stop updates}
        - {type: url, text: Track, url: "https://example.com/t/{{1}}", example: "8127"}

How each provider turns it into its own creation request lives in the provider's package
(``providers/meta/templates.py``, ``providers/twilio/templates.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from ..errors import ConfigError
from ..messages import MessageError, Template

__all__ = [
    "CATEGORIES",
    "Button",
    "CopyCodeButton",
    "HeaderMedia",
    "HeaderText",
    "PhoneButton",
    "QuickReply",
    "RemoteTemplate",
    "TemplateDefinition",
    "UrlButton",
    "load",
    "substitute",
]

Category = Literal["UTILITY", "MARKETING", "AUTHENTICATION"]
CATEGORIES: tuple[str, ...] = ("UTILITY", "MARKETING", "AUTHENTICATION")
#: Limits of Meta's template components (Twilio's are the same or looser).
NAME_MAX = 512
BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTON_TEXT_MAX = 25
BUTTONS_MAX = 10

_NAME = re.compile(r"^[a-z0-9_]+$")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HeaderText:
    """A text header; ``example`` fills its one ``{{1}}`` variable, when it has one."""

    text: str
    example: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderMedia:
    """An image, video or document header.

    ``url`` is a sample of the media (public HTTPS): Twilio shows it in the approval request.
    Meta asks for a sample uploaded with its Resumable Upload API: give that upload's handle as
    ``handle`` (``4::aW1h...``); without it the URL is sent as the example.
    """

    format: Literal["image", "video", "document"]
    url: str
    handle: str | None = None


@dataclass(frozen=True, slots=True)
class QuickReply:
    """A quick-reply button; a tap comes back as an inbound ``button`` with ``text`` as payload
    (unless you send the template with another payload)."""

    text: str


@dataclass(frozen=True, slots=True)
class UrlButton:
    """A button that opens ``url``; a trailing ``{{1}}`` makes it dynamic (``example`` fills it)."""

    text: str
    url: str
    example: str | None = None


@dataclass(frozen=True, slots=True)
class PhoneButton:
    """A button that calls ``phone`` (E.164, ``+`` included)."""

    text: str
    phone: str


@dataclass(frozen=True, slots=True)
class CopyCodeButton:
    """A "copy code" button (marketing coupons); ``example`` is a sample code."""

    example: str


Button = Union[QuickReply, UrlButton, PhoneButton, CopyCodeButton]


@dataclass(frozen=True, slots=True)
class RemoteTemplate:
    """A template as a provider reports it after a create or a status call.

    Attributes:
        id: Meta's template id, or Twilio's ContentSid (``HX…``).
        status: lower case (``pending``, ``approved``, ``rejected``, ``paused``, ...).
        category: the category the provider gave it.
        reason: why it was rejected or paused (``None`` when there is no such reason).
    """

    id: str
    status: str
    category: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateDefinition:
    """A message template: name, language, category, optional header, body with examples,
    optional footer and buttons.

    Variables are ``{{1}}``, ``{{2}}``... (positional: ``examples`` is a list) or ``{{name}}``
    (named: ``examples`` is a mapping). Every variable needs an example: both providers refuse
    a template without samples. Checks run at construction, naming the field.
    """

    name: str
    body: str
    language: str = "en_US"
    category: Category = "UTILITY"
    examples: Sequence[str] | Mapping[str, str] = ()
    header: HeaderText | HeaderMedia | None = None
    footer: str | None = None
    buttons: Sequence[Button] = ()
    #: Free text for you (shown by ``templates list``); not sent to the providers.
    description: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        where = f"TemplateDefinition({self.name!r})"
        if not isinstance(self.name, str) or not _NAME.match(self.name) or len(self.name) > NAME_MAX:
            raise MessageError(
                f"{where}.name", "must be lower-case letters, digits and underscores (e.g. order_shipped)"
            )
        if not isinstance(self.language, str) or not re.match(
            r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", self.language
        ):
            raise MessageError(
                f"{where}.language", f"must be a locale such as en_US or es, not {self.language!r}"
            )
        category = str(self.category).upper()
        if category not in CATEGORIES:
            raise MessageError(
                f"{where}.category", f"must be one of {', '.join(CATEGORIES)}, not {self.category!r}"
            )
        object.__setattr__(self, "category", category)
        if not isinstance(self.body, str) or not self.body.strip():
            raise MessageError(f"{where}.body", "must be a non-empty string")
        if len(self.body) > BODY_MAX:
            raise MessageError(f"{where}.body", f"is {len(self.body)} characters; the limit is {BODY_MAX}")
        variables = self.variables
        if isinstance(self.examples, Mapping):
            examples: Sequence[str] | Mapping[str, str] = {str(k): str(v) for k, v in self.examples.items()}
            missing = [v for v in variables if v not in examples]
        else:
            if isinstance(self.examples, (str, bytes)):
                raise MessageError(f"{where}.examples", "must be a list (positional) or a mapping (named)")
            examples = tuple(str(v) for v in self.examples)
            missing = [v for v in variables if not v.isdigit() or int(v) > len(examples)]
        if variables and (self.named != isinstance(examples, Mapping)):
            raise MessageError(
                f"{where}.examples",
                "must be a list for {{1}}-style variables and a mapping for {{name}}-style ones",
            )
        if missing:
            raise MessageError(f"{where}.examples", f"has no example for {{{{{missing[0]}}}}}")
        object.__setattr__(self, "examples", examples)
        if isinstance(self.header, HeaderText):
            if not self.header.text.strip() or len(self.header.text) > HEADER_TEXT_MAX:
                raise MessageError(f"{where}.header.text", f"must be 1 to {HEADER_TEXT_MAX} characters")
            if _VARIABLE.search(self.header.text) and not self.header.example:
                raise MessageError(f"{where}.header.example", "is needed: the header has a variable")
        elif isinstance(self.header, HeaderMedia):
            if self.header.format not in ("image", "video", "document"):
                raise MessageError(f"{where}.header.format", "must be image, video or document")
            if not _URL.match(self.header.url):
                raise MessageError(f"{where}.header.url", "must be a public http(s) URL of a sample")
        elif self.header is not None:
            raise MessageError(f"{where}.header", "must be a HeaderText, a HeaderMedia or None")
        if self.footer is not None and (not self.footer.strip() or len(self.footer) > FOOTER_MAX):
            raise MessageError(f"{where}.footer", f"must be 1 to {FOOTER_MAX} characters")
        buttons = tuple(self.buttons)
        if len(buttons) > BUTTONS_MAX:
            raise MessageError(f"{where}.buttons", f"has {len(buttons)} buttons; at most {BUTTONS_MAX}")
        for i, button in enumerate(buttons):
            if not isinstance(button, (QuickReply, UrlButton, PhoneButton, CopyCodeButton)):
                raise MessageError(f"{where}.buttons[{i}]", f"must be a button, not {type(button).__name__}")
            text = getattr(button, "text", None)
            if text is not None and (not text.strip() or len(text) > BUTTON_TEXT_MAX):
                raise MessageError(f"{where}.buttons[{i}].text", f"must be 1 to {BUTTON_TEXT_MAX} characters")
            if isinstance(button, UrlButton):
                if not _URL.match(button.url):
                    raise MessageError(f"{where}.buttons[{i}].url", "must be an http(s) URL")
                if _VARIABLE.search(button.url) and not button.example:
                    raise MessageError(f"{where}.buttons[{i}].example", "is needed: the URL has a variable")
        object.__setattr__(self, "buttons", buttons)

    # --- facts ---------------------------------------------------------------------------------
    @property
    def variables(self) -> tuple[str, ...]:
        """The body's variable names in order of first use (``("1", "2")`` or ``("name",)``)."""
        seen: list[str] = []
        for match in _VARIABLE.finditer(self.body):
            if match.group(1) not in seen:
                seen.append(match.group(1))
        return tuple(seen)

    @property
    def named(self) -> bool:
        """Whether the body uses named (``{{first_name}}``) variables."""
        return any(not v.isdigit() for v in self.variables)

    @property
    def key(self) -> str:
        """``name:language``: how the Store knows it."""
        return f"{self.name}:{self.language}"

    def fingerprint(self) -> str:
        """A hash of everything the providers see: equal fingerprint, nothing to resubmit."""
        data = self.to_json()
        data.pop("description", None)
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # --- sending -------------------------------------------------------------------------------
    def message(
        self,
        *values: str,
        header: str | None = None,
        url_suffix: str | None = None,
        reply_to: str | None = None,
        **named: str,
    ) -> Template:
        """The :class:`~eki_whatsapp.messages.Template` that sends this definition by name.

        Positional ``values`` fill ``{{1}}``, ``{{2}}``...; keywords fill named variables. On
        Twilio the ContentSid of the pushed template is found by name, so the same message works
        on both providers and on failover. ``url_suffix`` fills a dynamic URL button.
        """
        from ..messages import TemplateButton

        body: Sequence[str] | Mapping[str, str] = dict(named) if self.named else tuple(values)
        buttons = []
        for index, button in enumerate(self.buttons):
            if isinstance(button, UrlButton) and _VARIABLE.search(button.url) and url_suffix is not None:
                buttons.append(TemplateButton(index, "url", text=url_suffix))
        media_header = None
        if isinstance(self.header, HeaderMedia):
            from ..messages import Media

            media_header = Media(self.header.format, url=header or self.header.url)
        return Template(
            self.name,
            self.language,
            body=body,
            header=media_header if media_header is not None else header,
            buttons=buttons,
            reply_to=reply_to,
        )

    # --- files ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The definition as the JSON/YAML file form."""
        out: dict[str, Any] = {
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "body": self.body,
        }
        if self.examples:
            out["examples"] = (
                dict(self.examples) if isinstance(self.examples, Mapping) else list(self.examples)
            )
        if isinstance(self.header, HeaderText):
            out["header"] = {"type": "text", "text": self.header.text}
            if self.header.example:
                out["header"]["example"] = self.header.example
        elif isinstance(self.header, HeaderMedia):
            out["header"] = {"type": self.header.format, "url": self.header.url}
            if self.header.handle:
                out["header"]["handle"] = self.header.handle
        if self.footer is not None:
            out["footer"] = self.footer
        if self.buttons:
            out["buttons"] = [_button_json(b) for b in self.buttons]
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemplateDefinition:
        """A definition from its file form (see the module docstring)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a template definition must be a mapping, not {type(data).__name__}")
        known = {
            "name",
            "language",
            "category",
            "body",
            "examples",
            "header",
            "footer",
            "buttons",
            "description",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"template {data.get('name')!r}: unknown key {unknown[0]!r} "
                f"(known: {', '.join(sorted(known))})"
            )
        header: HeaderText | HeaderMedia | None = None
        raw_header = data.get("header")
        if isinstance(raw_header, str):
            header = HeaderText(raw_header)
        elif isinstance(raw_header, Mapping):
            kind = str(raw_header.get("type") or "text").lower()
            if kind == "text":
                header = HeaderText(str(raw_header.get("text") or ""), _opt_str(raw_header.get("example")))
            else:
                header = HeaderMedia(
                    kind,  # type: ignore[arg-type]  # checked by TemplateDefinition
                    str(raw_header.get("url") or ""),
                    _opt_str(raw_header.get("handle")),
                )
        buttons = [_button_from_json(data.get("name"), i, b) for i, b in enumerate(data.get("buttons") or ())]
        try:
            return cls(
                name=str(data.get("name") or ""),
                language=str(data.get("language") or "en_US"),
                category=str(data.get("category") or "UTILITY"),  # type: ignore[arg-type]
                body=str(data.get("body") or ""),
                examples=data.get("examples") or (),
                header=header,
                footer=_opt_str(data.get("footer")),
                buttons=buttons,
                description=_opt_str(data.get("description")),
            )
        except MessageError as exc:
            raise ConfigError(str(exc)) from exc


def load(path: str | Path) -> list[TemplateDefinition]:
    """The definitions in a ``.json``, ``.yaml`` or ``.yml`` file (one mapping, or a list of them,
    or ``{"templates": [...]}``). YAML needs PyYAML: ``pip install "eki-whatsapp[yaml]"``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the templates file {str(file)!r}: {exc.strerror}") from exc
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ConfigError(
                f"{file.name} is YAML, which needs PyYAML: pip install 'eki-whatsapp[yaml]' (or use JSON)"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file.name} is not valid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{file.name} is not valid JSON: {exc}") from exc
    if isinstance(data, Mapping) and "templates" in data:
        data = data["templates"]
    items = [data] if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ConfigError(f"{file.name} must hold a template, a list of templates or {{'templates': [...]}}")
    definitions = [TemplateDefinition.from_json(item) for item in items]
    keys = [d.key for d in definitions]
    duplicate = next((k for k in keys if keys.count(k) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"{file.name} defines {duplicate} twice")
    return definitions


def _button_json(button: Button) -> dict[str, Any]:
    if isinstance(button, QuickReply):
        return {"type": "quick_reply", "text": button.text}
    if isinstance(button, UrlButton):
        out: dict[str, Any] = {"type": "url", "text": button.text, "url": button.url}
        if button.example:
            out["example"] = button.example
        return out
    if isinstance(button, PhoneButton):
        return {"type": "phone_number", "text": button.text, "phone": button.phone}
    return {"type": "copy_code", "example": button.example}


def _button_from_json(name: Any, index: int, data: Any) -> Button:
    if not isinstance(data, Mapping):
        raise ConfigError(f"template {name!r}: buttons[{index}] must be a mapping")
    kind = str(data.get("type") or "").lower()
    if kind == "quick_reply":
        return QuickReply(str(data.get("text") or ""))
    if kind == "url":
        return UrlButton(
            str(data.get("text") or ""), str(data.get("url") or ""), _opt_str(data.get("example"))
        )
    if kind in ("phone_number", "phone"):
        return PhoneButton(str(data.get("text") or ""), str(data.get("phone") or ""))
    if kind == "copy_code":
        return CopyCodeButton(str(data.get("example") or ""))
    raise ConfigError(
        f"template {name!r}: buttons[{index}].type must be quick_reply, url, phone_number or "
        f"copy_code, not {kind!r}"
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def substitute(text: str, values: Sequence[str] | Mapping[str, str]) -> str:
    """``text`` with its ``{{n}}``/``{{name}}`` variables replaced by ``values``."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if isinstance(values, Mapping):
            return str(values.get(key, match.group(0)))
        index = int(key) - 1 if key.isdigit() else -1
        return values[index] if 0 <= index < len(values) else match.group(0)

    return _VARIABLE.sub(one, text)
