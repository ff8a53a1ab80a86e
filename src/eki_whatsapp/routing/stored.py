"""Outbound messages as JSON, and back: what the outbox keeps of a send that waits.

Every model of :mod:`eki_whatsapp.messages` is a dataclass of plain values, tuples, mappings and
other models, so one generic form does for all: ``{"$": "<model>", <field>: <value>, ...}``,
nested models the same way. Loading builds the models again through their constructors, so a
stored message is checked exactly like a new one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .. import messages
from ..events import InboundMessage
from ..messages import Message

__all__ = ["dump_inbound", "dump_message", "load_inbound", "load_message"]

_TYPE = "$"


def dump_message(message: Message) -> dict[str, Any]:
    """``message`` as a JSON object (:func:`load_message` gives it back)."""
    dumped = _dump(message)
    assert isinstance(dumped, dict)
    return dumped


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _dump(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {_TYPE: type(value).__name__, **fields}
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _dump(v) for k, v in value.items()}
    return value


def load_message(data: Mapping[str, Any]) -> Message:
    """The message :func:`dump_message` wrote (``MessageError`` when it is not valid any more)."""
    message: Message = _load(data)
    if not dataclasses.is_dataclass(message):
        raise ValueError("the stored message is not a message model")
    return message


def _load(value: Any) -> Any:
    if isinstance(value, Mapping):
        if _TYPE in value:
            name = str(value[_TYPE])
            model = getattr(messages, name, None)
            if not (isinstance(model, type) and dataclasses.is_dataclass(model)):
                raise ValueError(f"the stored message names {name!r}, which is not a message model")
            return model(**{k: _load(v) for k, v in value.items() if k != _TYPE})
        return {k: _load(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_load(v) for v in value)
    return value


#: What a reply needs of the message it answers to be routed again (its channel, its window).
_INBOUND_FIELDS = ("provider", "id", "sender", "recipient", "type")


def dump_inbound(message: InboundMessage | None) -> dict[str, Any] | None:
    """The parts of an answered message that routing reads, as JSON."""
    if message is None:
        return None
    dumped: dict[str, Any] = {name: getattr(message, name) for name in _INBOUND_FIELDS}
    dumped["timestamp"] = message.timestamp.isoformat()
    return dumped


def load_inbound(data: Mapping[str, Any] | None) -> InboundMessage | None:
    """The answered message :func:`dump_inbound` wrote (without its raw data)."""
    if not data:
        return None
    return InboundMessage(
        provider=str(data["provider"]),
        id=str(data["id"]),
        sender=str(data["sender"]),
        recipient=str(data["recipient"]),
        type=str(data["type"]),
        timestamp=datetime.fromisoformat(str(data["timestamp"])),
        raw={},
    )
