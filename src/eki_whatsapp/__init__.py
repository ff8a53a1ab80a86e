"""eki-whatsapp: WhatsApp assistants on Meta Cloud API and Twilio at once.

The public surface::

    from eki_whatsapp import Bot, Settings, WebhookRequest, WebhookResponse
    from eki_whatsapp import InboundMessage, StatusUpdate, ChangeEvent

Inbound parts are ``InboundLocation`` and ``InboundReaction``; what you send (``Location``,
``Reaction``, ``Text``, ...) is in :mod:`eki_whatsapp.messages`.
"""

from __future__ import annotations

from typing import Any

from .bot import Bot, Context
from .errors import ConfigError, EkiWhatsAppError, StoreError
from .events import (
    ChangeEvent,
    ErrorInfo,
    Event,
    InboundLocation,
    InboundMessage,
    InboundReaction,
    MediaRef,
    Pricing,
    Referral,
    StatusUpdate,
)
from .handoff import Handoff, HandoffState
from .optout import OptedOut, OptOuts
from .settings import Settings
from .store import LogEntry, MemoryStore, SQLiteStore, Store
from .webhook import WebhookRequest, WebhookResponse

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # ``Location``/``Reaction`` were the inbound types; the outbound ones are in ``messages``.
    if name in ("Location", "Reaction"):
        from .events import renamed

        return renamed(__name__, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Bot",
    "ChangeEvent",
    "ConfigError",
    "Context",
    "EkiWhatsAppError",
    "ErrorInfo",
    "Event",
    "Handoff",
    "HandoffState",
    "InboundLocation",
    "InboundMessage",
    "InboundReaction",
    "LogEntry",
    "MediaRef",
    "MemoryStore",
    "OptOuts",
    "OptedOut",
    "Pricing",
    "Referral",
    "SQLiteStore",
    "Settings",
    "StatusUpdate",
    "Store",
    "StoreError",
    "WebhookRequest",
    "WebhookResponse",
    "__version__",
]
