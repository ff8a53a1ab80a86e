"""Outbound messages: what a bot can send, independent of the provider.

Every model is an immutable (frozen, slotted) dataclass that checks WhatsApp's limits when it is
built, so a message that cannot be sent fails in your code with :class:`MessageError` naming the
field and the limit — not later at the provider. Each model has a ``kind`` (``"text"``,
``"image"``, ``"template"``, ``"buttons"``, ``"list"``, ...) and an optional ``reply_to`` (the id
of the message to quote).

Example::

    from eki_whatsapp.messages import Buttons, Media, Template, Text

    Text("See https://example.com", preview_url=True)
    Media.image("https://cdn.example.com/a.jpg", caption="Your receipt")
    Buttons("Confirm the booking?", ["Yes", "No"])
    Template("order_shipped", "en_US", body=["Sheena", "8127"], content_sid="HX0123...")

How each provider renders a model (and what it refuses) is described in ``docs/messages.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union, get_args

from .errors import EkiWhatsAppError

__all__ = [
    "MODELS",
    "Button",
    "Buttons",
    "Catalog",
    "Contact",
    "ContactAddress",
    "ContactPhone",
    "Contacts",
    "CtaUrl",
    "Currency",
    "DateTime",
    "Flow",
    "ListMenu",
    "Location",
    "LocationRequest",
    "Media",
    "MediaKind",
    "Message",
    "MessageError",
    "Product",
    "ProductList",
    "ProductSection",
    "Reaction",
    "Row",
    "Section",
    "Template",
    "TemplateButton",
    "Text",
]

MediaKind = Literal["image", "video", "audio", "document", "sticker"]
MEDIA_KINDS: tuple[str, ...] = ("image", "video", "audio", "document", "sticker")

# Limits from docs/wire.md §4 (Meta Cloud API; Twilio's are looser or checked by the provider).
#: Media caption (image, video, document).
CAPTION_MAX = 1024
#: Body of a reply-buttons or list message.
INTERACTIVE_BODY_MAX = 1024
#: Header / footer text of an interactive message.
INTERACTIVE_HEADER_MAX = 60
INTERACTIVE_FOOTER_MAX = 60
#: Reply buttons: count, title and id.
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
#: List menus.
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
LIST_SECTION_TITLE_MAX = 24
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
LIST_ROW_ID_MAX = 200
#: ``biz_opaque_callback_data`` and Twilio ``ContentVariables`` values.
CALLBACK_DATA_MAX = 512
CONTENT_VARIABLE_MAX = 1600
#: Template text parameters (the hydrated body is capped at 1024 by Meta).
TEMPLATE_PARAM_MAX = 1024

_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


class MessageError(EkiWhatsAppError, ValueError):
    """A message breaks a WhatsApp limit or is malformed.

    The message names the field (``Buttons.buttons[1].title``) and the limit, e.g.
    ``Buttons.buttons[1].title is 27 characters; the limit is 20``.

    Attributes:
        field: dotted name of the offending field.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field} {problem}")


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _max_len(field_name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise MessageError(field_name, f"is {len(value)} characters; the limit is {limit}")


def _required(field_name: str, value: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MessageError(field_name, "must be a non-empty string")
    return value


def _optional_str(field_name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise MessageError(field_name, f"must be a string or None, not {type(value).__name__}")


def _check_reply_to(owner: str, value: str | None) -> None:
    _optional_str(f"{owner}.reply_to", value)
    if value is not None and not value.strip():
        raise MessageError(f"{owner}.reply_to", "must be a message id (wamid / MessageSid) or None")


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Text:
    """A text message.

    Longer text than the provider allows (Meta 4096, Twilio 1600 characters) is split at
    paragraph, sentence, then word boundaries and sent as several messages, in order (see
    :func:`eki_whatsapp.formatting.split`).

    Args:
        body: the text; WhatsApp formatting (``*bold*``, ``_italic_``, ``~strike~``) is kept.
        preview_url: render a link preview of the first URL (Meta ``preview_url``).
        reply_to: id of a message to quote (Meta ``context.message_id``).

    Example::

        Text("Your order *8127* has shipped: https://example.com/t/8127", preview_url=True)
    """

    kind: ClassVar[str] = "text"

    body: str
    preview_url: bool = False
    reply_to: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.body, str):
            raise MessageError("Text.body", f"must be a string, not {type(self.body).__name__}")
        _required("Text.body", self.body)
        _check_reply_to("Text", self.reply_to)

    @classmethod
    def from_markdown(cls, markdown: str, *, preview_url: bool = False, reply_to: str | None = None) -> Text:
        """A ``Text`` whose body is ``markdown`` converted to WhatsApp formatting."""
        from .formatting import to_whatsapp

        return cls(to_whatsapp(markdown), preview_url=preview_url, reply_to=reply_to)


# --------------------------------------------------------------------------------------------
# Media
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Media:
    """An image, video, audio, document or sticker, by public URL or by Meta media id.

    Give exactly one of ``url`` (public HTTPS URL; both providers) or ``media_id`` (an id from
    :meth:`MetaCloud.upload_media <eki_whatsapp.providers.MetaCloud.upload_media>`; Meta only).
    ``caption`` is allowed on image, video and document (≤ 1024 characters); ``filename`` on
    documents only.

    Example::

        Media("document", url="https://cdn.example.com/invoice.pdf", filename="invoice.pdf")
        Media.image("https://cdn.example.com/a.jpg", caption="Receipt")
        Media.video(media_id="1479537139650973")
    Media("audio", url="https://cdn.example.com/note.ogg", voice=True)  # a voice note

    ``voice=True`` (audio only) sends a voice note: Meta shows the play icon, the business
    picture with a microphone and a transcript (OGG with the OPUS codec, ≤ 512 KB); Twilio sends
    the same URL as ``MediaUrl``.
    """

    kind: MediaKind
    url: str | None = None
    media_id: str | None = None
    caption: str | None = None
    filename: str | None = None
    reply_to: str | None = None
    #: Send audio as a voice note (Meta ``audio.voice``; best as OGG/OPUS ≤ 512 KB).
    voice: bool = False

    def __post_init__(self) -> None:
        if self.kind not in MEDIA_KINDS:
            raise MessageError("Media.kind", f"must be one of {', '.join(MEDIA_KINDS)}, not {self.kind!r}")
        if (self.url is None) == (self.media_id is None):
            raise MessageError("Media.url", "or Media.media_id must be given (exactly one of them)")
        if self.url is not None and not _URL.match(self.url):
            raise MessageError("Media.url", f"must be a public http(s) URL, not {self.url!r}")
        if self.media_id is not None:
            _required("Media.media_id", self.media_id)
        _optional_str("Media.caption", self.caption)
        _optional_str("Media.filename", self.filename)
        if self.caption is not None and self.kind not in ("image", "video", "document"):
            raise MessageError("Media.caption", f"is not allowed on {self.kind}; only image, video, document")
        _max_len("Media.caption", self.caption, CAPTION_MAX)
        if self.filename is not None and self.kind != "document":
            raise MessageError("Media.filename", f"is only allowed on documents, not on {self.kind}")
        if not isinstance(self.voice, bool):
            raise MessageError("Media.voice", f"must be True or False, not {self.voice!r}")
        if self.voice and self.kind != "audio":
            raise MessageError("Media.voice", f"is only allowed on audio, not on {self.kind}")
        _check_reply_to("Media", self.reply_to)

    @property
    def ref(self) -> str:
        """The URL or media id, whichever was given."""
        return self.url if self.url is not None else str(self.media_id)

    @classmethod
    def _make(cls, kind: MediaKind, ref: str | None, media_id: str | None, **kw: Any) -> Media:
        if ref is not None and media_id is None:
            if _URL.match(ref):
                return cls(kind, url=ref, **kw)
            return cls(kind, media_id=ref, **kw)
        return cls(kind, url=None if media_id is not None else ref, media_id=media_id, **kw)

    @classmethod
    def image(
        cls,
        ref: str | None = None,
        *,
        media_id: str | None = None,
        caption: str | None = None,
        reply_to: str | None = None,
    ) -> Media:
        """An image; ``ref`` is a URL (``http(s)://``) or a Meta media id."""
        return cls._make("image", ref, media_id, caption=caption, reply_to=reply_to)

    @classmethod
    def video(
        cls,
        ref: str | None = None,
        *,
        media_id: str | None = None,
        caption: str | None = None,
        reply_to: str | None = None,
    ) -> Media:
        """A video; ``ref`` is a URL or a Meta media id."""
        return cls._make("video", ref, media_id, caption=caption, reply_to=reply_to)

    @classmethod
    def audio(
        cls,
        ref: str | None = None,
        *,
        media_id: str | None = None,
        reply_to: str | None = None,
        voice: bool = False,
    ) -> Media:
        """An audio file (no caption); ``ref`` is a URL or a Meta media id; ``voice=True``
        sends it as a voice note."""
        return cls._make("audio", ref, media_id, reply_to=reply_to, voice=voice)

    @classmethod
    def document(
        cls,
        ref: str | None = None,
        *,
        media_id: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        reply_to: str | None = None,
    ) -> Media:
        """A document; ``filename`` is what the user sees (Meta)."""
        return cls._make("document", ref, media_id, caption=caption, filename=filename, reply_to=reply_to)

    @classmethod
    def sticker(
        cls, ref: str | None = None, *, media_id: str | None = None, reply_to: str | None = None
    ) -> Media:
        """A WebP sticker; ``ref`` is a URL or a Meta media id."""
        return cls._make("sticker", ref, media_id, reply_to=reply_to)


# --------------------------------------------------------------------------------------------
# Location, Reaction
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Location:
    """A location pin, optionally with a place name and address.

    Example::

        Location(37.4848, -122.1484, name="Meta HQ", address="1 Hacker Way, Menlo Park, CA")
    """

    kind: ClassVar[str] = "location"

    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    reply_to: str | None = None

    def __post_init__(self) -> None:
        for name, bound in (("latitude", 90.0), ("longitude", 180.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MessageError(f"Location.{name}", f"must be a number, not {value!r}")
            if not -bound <= value <= bound:
                raise MessageError(f"Location.{name}", f"is {value}; it must be between {-bound} and {bound}")
        _optional_str("Location.name", self.name)
        _optional_str("Location.address", self.address)
        _check_reply_to("Location", self.reply_to)


@dataclass(frozen=True, slots=True)
class Reaction:
    """An emoji reaction to a message; ``emoji=""`` removes the reaction (Meta only).

    Example::

        Reaction(ctx.message.id, "\N{THUMBS UP SIGN}")
    """

    kind: ClassVar[str] = "reaction"

    message_id: str
    emoji: str = ""

    def __post_init__(self) -> None:
        _required("Reaction.message_id", self.message_id)
        if not isinstance(self.emoji, str):
            raise MessageError("Reaction.emoji", 'must be a string ("" removes the reaction)')
        _max_len("Reaction.emoji", self.emoji, 16)

    @property
    def reply_to(self) -> None:
        """Reactions cannot quote a message (they already point at one)."""
        return None


# --------------------------------------------------------------------------------------------
# Interactive: reply buttons and list menus
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Button:
    """A reply button: ``id`` comes back as the reply payload, ``title`` is shown (≤ 20 chars)."""

    id: str
    title: str

    @classmethod
    def coerce(cls, value: Button | str | tuple[str, str]) -> Button:
        """``"Yes"`` → ``Button("Yes", "Yes")``; ``("yes", "Yes")`` → ``Button("yes", "Yes")``."""
        if isinstance(value, Button):
            return value
        if isinstance(value, str):
            return cls(value, value)
        if isinstance(value, tuple) and len(value) == 2:
            return cls(str(value[0]), str(value[1]))
        raise MessageError("Buttons.buttons", f"items must be Button, str or (id, title), not {value!r}")


InteractiveHeader = Union[str, Media, None]


def _check_interactive_common(
    owner: str, body: str, header: InteractiveHeader, footer: str | None, *, media_header: bool
) -> None:
    if not isinstance(body, str):
        raise MessageError(f"{owner}.body", "must be a string")
    _required(f"{owner}.body", body)
    _max_len(f"{owner}.body", body, INTERACTIVE_BODY_MAX)
    if isinstance(header, Media):
        if not media_header:
            raise MessageError(f"{owner}.header", "must be text (list menus cannot have a media header)")
        if header.kind not in ("image", "video", "document"):
            raise MessageError(
                f"{owner}.header", f"media must be image, video or document, not {header.kind}"
            )
        if header.caption is not None:
            raise MessageError(f"{owner}.header.caption", "is not allowed: a header shows no caption")
    elif header is not None:
        if not isinstance(header, str):
            raise MessageError(f"{owner}.header", "must be a string, a Media or None")
        _max_len(f"{owner}.header", header, INTERACTIVE_HEADER_MAX)
    _optional_str(f"{owner}.footer", footer)
    _max_len(f"{owner}.footer", footer, INTERACTIVE_FOOTER_MAX)


def _check_content(owner: str, content_sid: str | None, content_variables: Mapping[str, str] | None) -> None:
    _optional_str(f"{owner}.content_sid", content_sid)
    if content_sid is not None and not content_sid.startswith("HX"):
        raise MessageError(
            f"{owner}.content_sid", f"must be a Twilio Content SID starting with 'HX', not {content_sid!r}"
        )
    if content_variables is not None:
        for key, value in content_variables.items():
            if not isinstance(value, str) or not value:
                raise MessageError(
                    f"{owner}.content_variables[{key!r}]",
                    "must be a non-empty string (Twilio rejects empty values)",
                )
            _max_len(f"{owner}.content_variables[{key!r}]", value, CONTENT_VARIABLE_MAX)


def _freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if value is None:
        return None
    from types import MappingProxyType

    return MappingProxyType({str(k): v for k, v in value.items()})


def _match_choice(text: str, options: Sequence[tuple[str, str]]) -> str | None:
    """Id of the option ``text`` picks: its number (``"2"``), id or title (case-insensitive)."""
    answer = text.strip().rstrip(".)").strip()
    if not answer:
        return None
    if answer.isdigit():
        index = int(answer) - 1
        return options[index][0] if 0 <= index < len(options) else None
    folded = answer.casefold()
    for option_id, title in options:
        if folded in (option_id.casefold(), title.casefold()):
            return option_id
    return None


@dataclass(frozen=True, slots=True)
class Buttons:
    """Up to three reply buttons under a body text (session message: needs an open window).

    On Twilio these are real buttons too: ``twilio/quick-reply`` content created on demand (its
    ``ContentSid`` cached in the store), or ``content_sid`` when given. Only when the Content API
    refuses are they numbered text (``1. Yes``); :meth:`match` maps a typed answer (``"1"``,
    ``"yes"``) back to the button id.

    Example::

        Buttons("Confirm the booking?", [("yes", "Yes"), ("no", "No")], footer="Reply within 24h")
    """

    kind: ClassVar[str] = "buttons"

    body: str
    buttons: Sequence[Button | str | tuple[str, str]]
    header: InteractiveHeader = None
    footer: str | None = None
    reply_to: str | None = None
    #: A Twilio Content Template (``HX…``) to send instead of the content made on demand.
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _check_interactive_common("Buttons", self.body, self.header, self.footer, media_header=True)
        if isinstance(self.buttons, (str, bytes)) or not isinstance(self.buttons, Sequence):
            raise MessageError("Buttons.buttons", "must be a list of Button, str or (id, title)")
        buttons = tuple(Button.coerce(b) for b in self.buttons)
        if not 1 <= len(buttons) <= BUTTONS_MAX:
            raise MessageError(
                "Buttons.buttons", f"has {len(buttons)} buttons; 1 to {BUTTONS_MAX} are allowed"
            )
        ids: set[str] = set()
        titles: set[str] = set()
        for i, button in enumerate(buttons):
            where = f"Buttons.buttons[{i}]"
            _required(f"{where}.title", button.title)
            _max_len(f"{where}.title", button.title, BUTTON_TITLE_MAX)
            _required(f"{where}.id", button.id)
            _max_len(f"{where}.id", button.id, BUTTON_ID_MAX)
            if button.id != button.id.strip():
                raise MessageError(f"{where}.id", "must not start or end with spaces")
            if button.id in ids:
                raise MessageError(f"{where}.id", f"{button.id!r} is used twice; ids must be unique")
            if button.title in titles:
                raise MessageError(f"{where}.title", f"{button.title!r} is used twice; titles must be unique")
            ids.add(button.id)
            titles.add(button.title)
        _set(self, "buttons", buttons)
        _check_content("Buttons", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _check_reply_to("Buttons", self.reply_to)

    @property
    def items(self) -> tuple[Button, ...]:
        """The buttons as :class:`Button` objects."""
        return tuple(self.buttons)  # type: ignore[arg-type]

    def match(self, text: str) -> str | None:
        """The id of the button a typed answer picks (``"2"``, an id or a title), else ``None``."""
        return _match_choice(text, [(b.id, b.title) for b in self.items])


@dataclass(frozen=True, slots=True)
class Row:
    """A row of a list menu: ``id`` (≤ 200) comes back as the reply, ``title`` ≤ 24, ``description`` ≤ 72."""

    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of rows in a list menu (title required when there are several sections)."""

    title: str | None
    rows: Sequence[Row]

    def __post_init__(self) -> None:
        _set(self, "rows", tuple(self.rows))


@dataclass(frozen=True, slots=True)
class ListMenu:
    """A list menu: a button (``button``) that opens up to 10 rows in up to 10 sections.

    ``sections`` may also be a plain list of :class:`Row` (one untitled section). On Twilio it is
    a real list: ``twilio/list-picker`` content created on demand (or ``content_sid``); numbered
    text only when the Content API refuses, and :meth:`match` maps a typed answer to a row id.

    Example::

        ListMenu("Pick a delivery option", "Options",
                 [Section("Express", [Row("exp_1d", "Next day", "€9.90")]),
                  Section("Standard", [Row("std_3d", "3 days", "free")])])
    """

    kind: ClassVar[str] = "list"

    body: str
    button: str
    sections: Sequence[Section | Row]
    header: str | None = None
    footer: str | None = None
    reply_to: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _check_interactive_common("ListMenu", self.body, self.header, self.footer, media_header=False)
        _required("ListMenu.button", self.button)
        _max_len("ListMenu.button", self.button, LIST_BUTTON_MAX)
        if isinstance(self.sections, (str, bytes)) or not isinstance(self.sections, Sequence):
            raise MessageError("ListMenu.sections", "must be a list of Section or Row")
        items = tuple(self.sections)
        if items and all(isinstance(item, Row) for item in items):
            sections: tuple[Section, ...] = (Section(None, items),)  # type: ignore[arg-type]
        elif all(isinstance(item, Section) for item in items):
            sections = items  # type: ignore[assignment]
        else:
            raise MessageError("ListMenu.sections", "must be all Section or all Row objects")
        if not 1 <= len(sections) <= LIST_SECTIONS_MAX:
            raise MessageError(
                "ListMenu.sections", f"has {len(sections)} sections; 1 to {LIST_SECTIONS_MAX} are allowed"
            )
        total = sum(len(s.rows) for s in sections)
        if not 1 <= total <= LIST_ROWS_MAX:
            raise MessageError(
                "ListMenu.sections", f"has {total} rows in total; 1 to {LIST_ROWS_MAX} are allowed"
            )
        ids: set[str] = set()
        for si, section in enumerate(sections):
            where = f"ListMenu.sections[{si}]"
            if len(sections) > 1:
                _required(f"{where}.title", section.title)
            _optional_str(f"{where}.title", section.title)
            _max_len(f"{where}.title", section.title, LIST_SECTION_TITLE_MAX)
            if not section.rows:
                raise MessageError(f"{where}.rows", "must not be empty")
            for ri, row in enumerate(section.rows):
                rw = f"{where}.rows[{ri}]"
                if not isinstance(row, Row):
                    raise MessageError(rw, f"must be a Row, not {type(row).__name__}")
                _required(f"{rw}.id", row.id)
                _max_len(f"{rw}.id", row.id, LIST_ROW_ID_MAX)
                _required(f"{rw}.title", row.title)
                _max_len(f"{rw}.title", row.title, LIST_ROW_TITLE_MAX)
                _optional_str(f"{rw}.description", row.description)
                _max_len(f"{rw}.description", row.description, LIST_ROW_DESCRIPTION_MAX)
                if row.id in ids:
                    raise MessageError(f"{rw}.id", f"{row.id!r} is used twice; row ids must be unique")
                ids.add(row.id)
        _set(self, "sections", sections)
        _check_content("ListMenu", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _check_reply_to("ListMenu", self.reply_to)

    @property
    def section_list(self) -> tuple[Section, ...]:
        """The sections as :class:`Section` objects (a plain row list is one untitled section)."""
        return tuple(self.sections)  # type: ignore[arg-type]

    @property
    def rows(self) -> tuple[Row, ...]:
        """Every row, in order, across sections."""
        return tuple(row for section in self.section_list for row in section.rows)

    def match(self, text: str) -> str | None:
        """The id of the row a typed answer picks (its number, id or title), else ``None``."""
        return _match_choice(text, [(r.id, r.title) for r in self.rows])


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Currency:
    """A currency template parameter (Meta): ``Currency("$10.99", "USD", 10990)``."""

    fallback_value: str
    code: str
    amount_1000: int


@dataclass(frozen=True, slots=True)
class DateTime:
    """A date/time template parameter (Meta), shown as ``fallback_value``."""

    fallback_value: str


TemplateValue = Union[str, Currency, DateTime]


@dataclass(frozen=True, slots=True)
class TemplateButton:
    """A parameter for a template button (Meta ``components[type=button]``).

    ``sub_type="quick_reply"`` takes a ``payload`` (comes back in the inbound ``button`` message);
    ``sub_type="url"`` takes ``text`` (the dynamic URL suffix); ``"copy_code"`` takes ``text``
    (the coupon code).
    """

    index: int
    sub_type: Literal["quick_reply", "url", "copy_code", "flow"] = "quick_reply"
    payload: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template: the only message that may be sent outside the 24-hour window.

    One object renders to both providers:

    * **Meta**: ``name`` + ``language`` + ``header`` / ``body`` / ``buttons`` parameters.
      ``header`` is a text parameter (``str``), a :class:`Media` (image, **video**, document) or a
      :class:`Location`. ``body`` is a list of values (positional ``{{1}}``, ``{{2}}``) or a mapping
      (named parameters).
    * **Twilio**: ``content_sid`` (``HX…``) is required; ``ContentVariables`` is the JSON string of
      ``content_variables``, or — when not given — of the body values numbered from ``"1"``
      (``{"1": "Sheena", "2": "8127"}``), or the named body parameters as given.

    Example::

        Template("order_shipped", "en_US",
                 header=Media.video("https://cdn.example.com/clip.mp4"),
                 body=["Sheena", Currency("$10.99", "USD", 10990)],
                 buttons=[TemplateButton(0, "quick_reply", payload="STOP_PROMOS")],
                 content_sid="HX0123456789abcdef0123456789abcdef")
    """

    kind: ClassVar[str] = "template"

    name: str
    language: str = "en_US"
    body: Sequence[TemplateValue] | Mapping[str, TemplateValue] = ()
    header: str | Media | Location | None = None
    buttons: Sequence[TemplateButton] = ()
    reply_to: str | None = None
    #: Twilio Content Template SID (``HX…``); required to send on Twilio.
    content_sid: str | None = None
    #: Twilio ``ContentVariables``; derived from ``body`` when omitted.
    content_variables: Mapping[str, str] | None = None
    #: Meta ``biz_opaque_callback_data`` (≤ 512 chars), echoed back in status webhooks.
    callback_data: str | None = None

    def __post_init__(self) -> None:
        _required("Template.name", self.name)
        _required("Template.language", self.language)
        if isinstance(self.body, Mapping):
            named = {str(k): v for k, v in self.body.items()}
            for key, value in named.items():
                self._check_value(f"Template.body[{key!r}]", value)
            _set(self, "body", _freeze_mapping(named))
        else:
            if isinstance(self.body, (str, bytes)):
                raise MessageError("Template.body", "must be a list of values or a mapping, not a string")
            values = tuple(self.body)
            for i, value in enumerate(values):
                self._check_value(f"Template.body[{i}]", value)
            _set(self, "body", values)
        if isinstance(self.header, str):
            _required("Template.header", self.header)
            _max_len("Template.header", self.header, INTERACTIVE_HEADER_MAX)
        elif isinstance(self.header, Media):
            if self.header.kind not in ("image", "video", "document"):
                raise MessageError(
                    "Template.header", f"media must be image, video or document, not {self.header.kind}"
                )
            if self.header.caption is not None:
                raise MessageError("Template.header.caption", "is not allowed: a header shows no caption")
        elif self.header is not None and not isinstance(self.header, Location):
            raise MessageError("Template.header", "must be a str, Media, Location or None")
        buttons = tuple(self.buttons)
        for i, button in enumerate(buttons):
            where = f"Template.buttons[{i}]"
            if not isinstance(button, TemplateButton):
                raise MessageError(where, f"must be a TemplateButton, not {type(button).__name__}")
            if button.index < 0 or button.index > 9:
                raise MessageError(f"{where}.index", f"is {button.index}; it must be 0 to 9")
            if button.sub_type == "quick_reply":
                _required(f"{where}.payload", button.payload)
            elif button.sub_type in ("url", "copy_code"):
                _required(f"{where}.text", button.text)
        _set(self, "buttons", buttons)
        _check_content("Template", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _optional_str("Template.callback_data", self.callback_data)
        _max_len("Template.callback_data", self.callback_data, CALLBACK_DATA_MAX)
        _check_reply_to("Template", self.reply_to)

    @staticmethod
    def _check_value(where: str, value: Any) -> None:
        if isinstance(value, str):
            _required(where, value)
            _max_len(where, value, TEMPLATE_PARAM_MAX)
        elif not isinstance(value, (Currency, DateTime)):
            raise MessageError(where, f"must be a str, Currency or DateTime, not {type(value).__name__}")

    def twilio_variables(self) -> dict[str, str]:
        """Twilio's ``ContentVariables`` for this template, as a dict (rendering lives in
        :func:`eki_whatsapp.providers.twilio.content.template_variables`)."""
        from .providers.twilio.content import template_variables

        return template_variables(self)

    def twilio_content_variables(self) -> str | None:
        """``ContentVariables`` as the JSON string Twilio expects (``None`` when there are none)."""
        from .providers.twilio.content import content_variables_json, template_variables

        return content_variables_json(template_variables(self))


# --------------------------------------------------------------------------------------------
# Contact cards
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContactPhone:
    """A phone number on a contact card; ``wa_id`` adds the "Message" button in WhatsApp."""

    phone: str
    type: str | None = None
    wa_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContactAddress:
    """A postal address on a contact card (every part optional)."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact card (vCard-like): a name and any phones, e-mails, URLs, addresses.

    ``formatted_name`` is what the chat shows; give ``first_name``/``last_name`` too when you
    have them (Meta needs one name part besides it: ``first_name`` defaults to the formatted
    name). Phones are strings or :class:`ContactPhone`.

    Example::

        Contact("Ana Souza", phones=[ContactPhone("+5511987654321", "WORK", wa_id="5511987654321")],
                emails=["ana@example.com"], company="Eki")
    """

    formatted_name: str
    first_name: str | None = None
    last_name: str | None = None
    phones: Sequence[str | ContactPhone] = ()
    emails: Sequence[str] = ()
    urls: Sequence[str] = ()
    addresses: Sequence[ContactAddress] = ()
    company: str | None = None
    department: str | None = None
    title: str | None = None
    #: ``YYYY-MM-DD``.
    birthday: str | None = None

    def __post_init__(self) -> None:
        _required("Contact.formatted_name", self.formatted_name)
        for name in ("first_name", "last_name", "company", "department", "title", "birthday"):
            _optional_str(f"Contact.{name}", getattr(self, name))
        if self.birthday is not None and not re.match(r"^\d{4}-\d{2}-\d{2}$", self.birthday):
            raise MessageError("Contact.birthday", f"must be YYYY-MM-DD, not {self.birthday!r}")
        phones: list[ContactPhone] = []
        for i, phone in enumerate(_as_tuple("Contact.phones", self.phones)):
            item = ContactPhone(phone) if isinstance(phone, str) else phone
            if not isinstance(item, ContactPhone):
                raise MessageError(f"Contact.phones[{i}]", "must be a str or a ContactPhone")
            _required(f"Contact.phones[{i}].phone", item.phone)
            phones.append(item)
        _set(self, "phones", tuple(phones))
        for field_name in ("emails", "urls"):
            values = _as_tuple(f"Contact.{field_name}", getattr(self, field_name))
            for i, value in enumerate(values):
                _required(f"Contact.{field_name}[{i}]", value)
            _set(self, field_name, values)
        addresses = _as_tuple("Contact.addresses", self.addresses)
        for i, address in enumerate(addresses):
            if not isinstance(address, ContactAddress):
                raise MessageError(f"Contact.addresses[{i}]", "must be a ContactAddress")
        _set(self, "addresses", addresses)

    @property
    def phone_list(self) -> tuple[ContactPhone, ...]:
        """The phones as :class:`ContactPhone` objects."""
        return tuple(self.phones)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Contacts:
    """One or more contact cards in one message.

    Twilio's Messages API has no contact cards: the router sends these through Meta (or raises
    :class:`~eki_whatsapp.providers.UnsupportedMessage` when only Twilio is configured).

    Example::

        Contacts([Contact("Eki support", phones=["+34910000000"])])
    """

    kind: ClassVar[str] = "contacts"

    contacts: Sequence[Contact]
    reply_to: str | None = None

    def __post_init__(self) -> None:
        contacts = _as_tuple("Contacts.contacts", self.contacts)
        if not contacts:
            raise MessageError("Contacts.contacts", "must hold at least one Contact")
        for i, contact in enumerate(contacts):
            if not isinstance(contact, Contact):
                raise MessageError(
                    f"Contacts.contacts[{i}]", f"must be a Contact, not {type(contact).__name__}"
                )
        _set(self, "contacts", contacts)
        _check_reply_to("Contacts", self.reply_to)

    @property
    def items(self) -> tuple[Contact, ...]:
        """The contact cards."""
        return tuple(self.contacts)


# --------------------------------------------------------------------------------------------
# Call-to-action URL, location request, Flows
# --------------------------------------------------------------------------------------------
#: ``cta_url`` button label and WhatsApp Flows button label.
CTA_DISPLAY_TEXT_MAX = 20


@dataclass(frozen=True, slots=True)
class CtaUrl:
    """A message with one button that opens a URL (the raw link stays hidden).

    Meta sends ``interactive`` ``cta_url``; Twilio a ``twilio/call-to-action`` Content Template
    created on demand (in session no approval is needed), or the text with the link when the
    Content API refuses.

    Example::

        CtaUrl("Track your parcel", "Track", "https://example.com/t/8127", footer="Eki")
    """

    kind: ClassVar[str] = "cta_url"

    body: str
    display_text: str
    url: str
    header: InteractiveHeader = None
    footer: str | None = None
    reply_to: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _check_interactive_common("CtaUrl", self.body, self.header, self.footer, media_header=True)
        _required("CtaUrl.display_text", self.display_text)
        _max_len("CtaUrl.display_text", self.display_text, CTA_DISPLAY_TEXT_MAX)
        if not isinstance(self.url, str) or not _URL.match(self.url):
            raise MessageError("CtaUrl.url", f"must be an http(s) URL, not {self.url!r}")
        _check_content("CtaUrl", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _check_reply_to("CtaUrl", self.reply_to)


@dataclass(frozen=True, slots=True)
class LocationRequest:
    """Asks the user to share their location (a "Send location" button); Meta only.

    The answer comes back as an inbound ``location`` message.

    Example::

        LocationRequest("Where should we pick you up?")
    """

    kind: ClassVar[str] = "location_request"

    body: str
    reply_to: str | None = None

    def __post_init__(self) -> None:
        _required("LocationRequest.body", self.body)
        _max_len("LocationRequest.body", self.body, INTERACTIVE_BODY_MAX)
        _check_reply_to("LocationRequest", self.reply_to)


@dataclass(frozen=True, slots=True)
class Flow:
    """A WhatsApp Flow (a form inside WhatsApp) behind a button.

    Give ``flow_id`` or ``flow_name``. ``action="navigate"`` (default) opens ``screen`` with
    ``data``; ``"data_exchange"`` asks your Flow endpoint for the first screen. ``token``
    identifies this sending; it comes back with the answer
    (:attr:`~eki_whatsapp.events.InboundMessage.flow_reply`). ``mode="draft"`` sends an
    unpublished Flow for testing.

    Twilio sends Flows only as ``twilio/flows`` Content Templates it hosts: pass ``content_sid``
    for Twilio, otherwise the router sends a Flow through Meta.

    Example::

        Flow("Book a table", cta="Book", flow_id="1197715005513101", screen="BOOKING",
             data={"party": 2}, token="booking-8127")
    """

    kind: ClassVar[str] = "flow"

    body: str
    cta: str
    flow_id: str | None = None
    flow_name: str | None = None
    token: str | None = None
    action: Literal["navigate", "data_exchange"] = "navigate"
    screen: str | None = None
    data: Mapping[str, Any] | None = None
    mode: Literal["published", "draft"] = "published"
    header: InteractiveHeader = None
    footer: str | None = None
    reply_to: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _check_interactive_common("Flow", self.body, self.header, self.footer, media_header=True)
        _required("Flow.cta", self.cta)
        _max_len("Flow.cta", self.cta, CTA_DISPLAY_TEXT_MAX)
        if (self.flow_id is None) == (self.flow_name is None):
            raise MessageError("Flow.flow_id", "or Flow.flow_name must be given (exactly one of them)")
        _optional_str("Flow.flow_id", self.flow_id)
        _optional_str("Flow.flow_name", self.flow_name)
        _optional_str("Flow.token", self.token)
        if self.action not in ("navigate", "data_exchange"):
            raise MessageError("Flow.action", f"must be 'navigate' or 'data_exchange', not {self.action!r}")
        if self.mode not in ("published", "draft"):
            raise MessageError("Flow.mode", f"must be 'published' or 'draft', not {self.mode!r}")
        if self.action == "navigate":
            _required("Flow.screen", self.screen)
        elif self.screen is not None or self.data is not None:
            raise MessageError("Flow.screen", "and Flow.data are only allowed with action='navigate'")
        if self.data is not None:
            if not isinstance(self.data, Mapping) or not self.data:
                raise MessageError("Flow.data", "must be a non-empty mapping or None")
            _set(self, "data", _freeze_mapping(self.data))
        _check_content("Flow", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _check_reply_to("Flow", self.reply_to)


# --------------------------------------------------------------------------------------------
# Commerce: one product, a product list, the catalog
# --------------------------------------------------------------------------------------------
PRODUCT_LIST_SECTIONS_MAX = 10
PRODUCT_LIST_ITEMS_MAX = 30


@dataclass(frozen=True, slots=True)
class Product:
    """One product of your Meta catalog (``product_id`` is its retailer id / SKU).

    Twilio needs a ``twilio/catalog`` Content Template (``content_sid``); without one the
    router sends it through Meta.

    Example::

        Product("194910842419823", "sku-8127", body="Back in stock")
    """

    kind: ClassVar[str] = "product"

    catalog_id: str
    product_id: str
    body: str | None = None
    footer: str | None = None
    reply_to: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _required("Product.catalog_id", self.catalog_id)
        _required("Product.product_id", self.product_id)
        _optional_str("Product.body", self.body)
        _max_len("Product.body", self.body, INTERACTIVE_BODY_MAX)
        _optional_str("Product.footer", self.footer)
        _max_len("Product.footer", self.footer, INTERACTIVE_FOOTER_MAX)
        _check_content("Product", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _check_reply_to("Product", self.reply_to)


@dataclass(frozen=True, slots=True)
class ProductSection:
    """A titled group of products in a :class:`ProductList` (retailer ids)."""

    title: str
    product_ids: Sequence[str]

    def __post_init__(self) -> None:
        _set(self, "product_ids", _as_tuple("ProductSection.product_ids", self.product_ids))


@dataclass(frozen=True, slots=True)
class ProductList:
    """Up to 30 products of a catalog in up to 10 titled sections, under a text header.

    Example::

        ProductList("194910842419823", "Our picks", "Chosen for you",
                    [ProductSection("Shoes", ["sku-1", "sku-2"])])
    """

    kind: ClassVar[str] = "product_list"

    catalog_id: str
    header: str
    body: str
    sections: Sequence[ProductSection]
    footer: str | None = None
    reply_to: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _required("ProductList.catalog_id", self.catalog_id)
        _required("ProductList.header", self.header)
        _max_len("ProductList.header", self.header, INTERACTIVE_HEADER_MAX)
        _required("ProductList.body", self.body)
        _max_len("ProductList.body", self.body, INTERACTIVE_BODY_MAX)
        _optional_str("ProductList.footer", self.footer)
        _max_len("ProductList.footer", self.footer, INTERACTIVE_FOOTER_MAX)
        sections = _as_tuple("ProductList.sections", self.sections)
        if not 1 <= len(sections) <= PRODUCT_LIST_SECTIONS_MAX:
            raise MessageError(
                "ProductList.sections",
                f"has {len(sections)} sections; 1 to {PRODUCT_LIST_SECTIONS_MAX} are allowed",
            )
        total = 0
        for i, section in enumerate(sections):
            where = f"ProductList.sections[{i}]"
            if not isinstance(section, ProductSection):
                raise MessageError(where, f"must be a ProductSection, not {type(section).__name__}")
            _required(f"{where}.title", section.title)
            _max_len(f"{where}.title", section.title, LIST_SECTION_TITLE_MAX)
            if not section.product_ids:
                raise MessageError(f"{where}.product_ids", "must not be empty")
            for j, product_id in enumerate(section.product_ids):
                _required(f"{where}.product_ids[{j}]", product_id)
            total += len(section.product_ids)
        if total > PRODUCT_LIST_ITEMS_MAX:
            raise MessageError(
                "ProductList.sections", f"has {total} products; at most {PRODUCT_LIST_ITEMS_MAX} are allowed"
            )
        _set(self, "sections", sections)
        _check_content("ProductList", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _check_reply_to("ProductList", self.reply_to)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Your whole catalog behind a "View catalog" button; the thumbnail is one product's image.

    Example::

        Catalog("Everything we sell, in one place", thumbnail_product_id="sku-8127")
    """

    kind: ClassVar[str] = "catalog"

    body: str
    thumbnail_product_id: str | None = None
    footer: str | None = None
    reply_to: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _required("Catalog.body", self.body)
        _max_len("Catalog.body", self.body, INTERACTIVE_BODY_MAX)
        _optional_str("Catalog.thumbnail_product_id", self.thumbnail_product_id)
        _optional_str("Catalog.footer", self.footer)
        _max_len("Catalog.footer", self.footer, INTERACTIVE_FOOTER_MAX)
        _check_content("Catalog", self.content_sid, self.content_variables)
        _set(self, "content_variables", _freeze_mapping(self.content_variables))
        _check_reply_to("Catalog", self.reply_to)


def _as_tuple(field_name: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, tuple)):
        raise MessageError(field_name, f"must be a list, not {type(value).__name__}")
    return tuple(value)


#: Any outbound message model.
Message = Union[
    Text,
    Media,
    Template,
    Buttons,
    ListMenu,
    Location,
    Reaction,
    Contacts,
    CtaUrl,
    LocationRequest,
    Flow,
    Product,
    ProductList,
    Catalog,
]
#: The outbound message models, for ``isinstance`` checks (``isinstance(x, MODELS)``).
MODELS: tuple[type, ...] = get_args(Message)


def __getattr__(name: str) -> Any:
    # moved to the Twilio package, where its rendering lives
    if name == "content_variables_json":
        from .providers.twilio.content import content_variables_json

        return content_variables_json
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
