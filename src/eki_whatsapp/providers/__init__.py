"""Providers: how messages leave (Meta Cloud API, Twilio) and how their webhooks are read.

``MetaCloud``, ``Twilio`` and ``RetryPolicy`` are imported on first use so that
``import eki_whatsapp`` stays light (no httpx import until a provider is needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    AuthError,
    InvalidRecipient,
    MediaError,
    MessageRejected,
    Provider,
    ProviderDown,
    ProviderError,
    RateLimited,
    SendReceipt,
    TemplateError,
    UnsupportedMessage,
    WindowClosed,
    classify_error,
)

if TYPE_CHECKING:
    from ._http import RetryPolicy
    from .meta import MetaCloud
    from .twilio import Twilio

_LAZY = {
    "MetaCloud": (".meta", "MetaCloud"),
    "Twilio": (".twilio", "Twilio"),
    "RetryPolicy": ("._http", "RetryPolicy"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        value = getattr(import_module(module, __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuthError",
    "InvalidRecipient",
    "MediaError",
    "MessageRejected",
    "MetaCloud",
    "Provider",
    "ProviderDown",
    "ProviderError",
    "RateLimited",
    "RetryPolicy",
    "SendReceipt",
    "TemplateError",
    "Twilio",
    "UnsupportedMessage",
    "WindowClosed",
    "classify_error",
]
