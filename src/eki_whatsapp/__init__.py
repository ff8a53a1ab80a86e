"""eki-whatsapp: WhatsApp assistants on Meta Cloud API and Twilio at once.

The public surface::

    from eki_whatsapp import Bot, Settings, WebhookRequest, WebhookResponse
    from eki_whatsapp import InboundMessage, StatusUpdate, ChangeEvent
"""

from __future__ import annotations

from .bot import Bot, Context
from .errors import ConfigError, EkiWhatsAppError, SettingProblem, SettingsError, StoreError
from .events import (
    ChangeEvent,
    ErrorInfo,
    Event,
    InboundMessage,
    Location,
    MediaRef,
    Pricing,
    Reaction,
    Referral,
    StatusUpdate,
)
from .handoff import Handoff, HandoffState
from .optout import OptedOut, OptOuts
from .settings import Settings
from .store import LogEntry, MemoryStore, SQLiteStore, Store
from .webhook import WebhookRequest, WebhookResponse

__version__ = "0.1.0"

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
    "InboundMessage",
    "Location",
    "LogEntry",
    "MediaRef",
    "MemoryStore",
    "OptOuts",
    "OptedOut",
    "Pricing",
    "Reaction",
    "Referral",
    "SQLiteStore",
    "SettingProblem",
    "Settings",
    "SettingsError",
    "StatusUpdate",
    "Store",
    "StoreError",
    "WebhookRequest",
    "WebhookResponse",
    "__version__",
]
