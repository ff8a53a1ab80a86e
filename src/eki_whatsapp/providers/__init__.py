"""Providers: how messages leave (Meta Cloud API, Twilio) and how their webhooks are read."""

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
    WindowClosed,
    classify_error,
)

__all__ = [
    "AuthError",
    "InvalidRecipient",
    "MediaError",
    "MessageRejected",
    "Provider",
    "ProviderDown",
    "ProviderError",
    "RateLimited",
    "SendReceipt",
    "TemplateError",
    "WindowClosed",
    "classify_error",
]
