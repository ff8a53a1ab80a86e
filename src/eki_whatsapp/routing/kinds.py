"""What the router needs to know of an outbound message: its kind, its text for the log."""

from __future__ import annotations

from ..messages import Message, Text

__all__ = ["coerce_message", "is_template", "message_category", "message_kind", "message_text"]


def coerce_message(message: Message | str) -> Message:
    """A ``str`` becomes a :class:`~eki_whatsapp.messages.Text`; message models pass through."""
    if isinstance(message, str):
        return Text(message)
    return message


def message_kind(message: Message) -> str:
    """The ``kind`` of an outbound message model (``text``, ``template``, ...)."""
    return str(getattr(message, "kind", None) or type(message).__name__.lower())


def message_text(message: Message) -> str | None:
    """The text of a message for the log (body, text or caption), if it has one; a template is
    logged by name (``template eki_recordatorio``), so the log says what went out."""
    for attr in ("body", "text", "caption"):
        value = getattr(message, attr, None)
        if isinstance(value, str):
            return value
    name = getattr(message, "name", None)
    if is_template(message) and isinstance(name, str):
        return f"template {name}"
    return None


def is_template(message: Message) -> bool:
    """Whether ``message`` is a template (the only kind allowed outside the 24-hour window)."""
    return message_kind(message) == "template"


def message_category(message: Message, given: str | None = None) -> str | None:
    """The pricing category: ``given``, else the message's own, else ``service`` for a free-form
    message (``None`` for a template that does not say: its cost is unknown)."""
    if given is not None:
        return given.lower()
    own = getattr(message, "category", None)
    if isinstance(own, str):
        return own.lower()
    return None if is_template(message) else "service"
