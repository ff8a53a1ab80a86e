"""Providers: how messages leave (Meta Cloud API, Twilio) and how their webhooks are read.

Each provider is one package that owns its wire format end to end (``meta/``, ``twilio/``);
:mod:`.base` says what a provider offers the core, :mod:`.errors` holds the one error hierarchy.
This module knows which providers are built in and builds them from the settings.

``MetaCloud``, ``Twilio`` and ``RetryPolicy`` are imported on first use so that
``import eki_whatsapp`` stays light (no httpx import until a provider is needed).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .base import (
    AuthError,
    InvalidRecipient,
    MediaError,
    MessageRejected,
    OutcomeUnknown,
    Provider,
    ProviderDown,
    ProviderError,
    RateLimited,
    SendReceipt,
    TemplateError,
    Undeliverable,
    UnsupportedMessage,
    WebhookReader,
    WindowClosed,
    classify_error,
    register_error_codes,
)
from .base import PayloadError as BasePayloadError

if TYPE_CHECKING:
    from ..events import ChangeEvent, Event, MediaRef
    from ..settings import Settings
    from ..store.base import LogEntry, StatusRecord
    from ..templates.registry import TemplateChange
    from ._http import RetryPolicy
    from .meta import MetaCloud
    from .twilio import Twilio

#: The built-in provider packages, in the order their webhook readers are asked to ``detect``
#: a request (Twilio's signed JSON first: Meta reads every other JSON post).
BUILTIN = ("twilio", "meta")

_LAZY = {
    "MetaCloud": (".meta", "MetaCloud"),
    "Twilio": (".twilio", "Twilio"),
    "RetryPolicy": ("._http", "RetryPolicy"),
}


def package(name: str) -> ModuleType:
    """The package of a built-in provider (``"meta"`` → :mod:`eki_whatsapp.providers.meta`)."""
    if name not in BUILTIN:
        raise ValueError(f"{name!r} is not a built-in provider; built in: {', '.join(sorted(BUILTIN))}")
    return import_module(f"{__name__}.{name}")


def webhook_readers(settings: Settings) -> list[WebhookReader]:
    """The webhook readers of the built-in providers, configured from ``settings``.

    They are always present: a request of a provider the policy does not use still gets a clear
    answer (e.g. 403 when its secret is not set) instead of a 4xx about its shape.
    """
    from .meta import MetaWebhook
    from .twilio import TwilioWebhook

    readers: dict[str, WebhookReader] = {"meta": MetaWebhook(settings), "twilio": TwilioWebhook(settings)}
    return [readers[name] for name in BUILTIN]


def senders(settings: Settings) -> dict[str, Provider]:
    """Senders for every provider the policy names and that has credentials."""
    out: dict[str, Provider] = {}
    for name in settings.enabled_providers:
        if settings.missing_for(name):
            continue
        if name == "meta":
            from .meta.send import MetaCloud

            out[name] = MetaCloud.from_settings(settings)
        elif name == "twilio":
            from .twilio.send import Twilio

            out[name] = Twilio.from_settings(settings)
    return out


def media_refs(provider: str, kind: str, raw: Mapping[str, Any]) -> tuple[MediaRef, ...]:
    """The media of a logged inbound message, read back from its raw data by its provider's
    parser (``()`` for a provider that is not built in, or a message without media)."""
    if provider == "meta":
        from .meta.parse import media_of as meta_media

        return meta_media(kind, raw)
    if provider == "twilio":
        from .twilio.parse import media_of as twilio_media

        return twilio_media(raw)
    return ()


def template_change(event: ChangeEvent) -> TemplateChange | None:
    """What a webhook says about a template, read by its provider (``None``: not about one)."""
    if event.provider == "meta":
        from .meta.templates import template_change as meta_change

        return meta_change(event)
    return None


def reread(entry: LogEntry | None, status: StatusRecord | None) -> Event | None:
    """The event a logged row was made from, read again by its provider's parser (the event a
    handler got the first time, for handling it again after a crash); ``None`` for a provider
    that is not built in, or data that no longer parses."""
    if status is not None:
        provider, raw = status.provider, status.raw
    elif entry is not None:
        provider, raw = entry.provider, entry.raw
    else:
        return None
    if not isinstance(raw, Mapping):
        return None
    if provider == "meta":
        from .meta.parse import reread as meta_reread

        if entry is None:
            return meta_reread(raw, status=True)
        extra = entry.extra or {}
        return meta_reread(
            raw,
            status=False,
            recipient=entry.recipient,
            sender=entry.sender,
            profile_name=extra.get("profile_name"),
            business_number=extra.get("business_number"),
        )
    if provider == "twilio":
        from .twilio.parse import parse_params

        try:
            events = parse_params(raw)
        except BasePayloadError:
            return None
        return events[0] if events else None
    return None


def free_allowances(settings: Settings, providers: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Monthly free allowances configured per provider: a built-in package's ``prices`` module
    reads its setting (``WHATSAPP_META_FREE_ALLOWANCE``); a registered provider may say its own
    with a ``free_allowance`` attribute (messages a month). Zero: none configured."""
    found: dict[str, int] = {}
    for name in BUILTIN:
        try:
            prices = import_module(f"{package(name).__name__}.prices")
        except ModuleNotFoundError:
            continue
        found[name] = int(prices.free_allowance(settings))
    for name, provider in (providers or {}).items():
        own = getattr(provider, "free_allowance", None)
        if isinstance(own, int) and not isinstance(own, bool):
            found[name] = own
    return found


@functools.cache
def explained_codes() -> dict[int, str]:
    """Error code → key of its explanation in plain words, from every built-in package's
    ``errors.EXPLAINED`` (see :func:`eki_whatsapp.conversations.explain_error`)."""
    found: dict[int, str] = {}
    for name in BUILTIN:
        found.update(getattr(import_module(f"{package(name).__name__}.errors"), "EXPLAINED", {}))
    return found


def doctor_checks(name: str) -> ModuleType:
    """The doctor module of a built-in provider: ``offline_checks(settings)`` and
    ``online_checks(settings, client)``."""
    return import_module(f"{package(name).__name__}.doctor")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
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
    "OutcomeUnknown",
    "Provider",
    "ProviderDown",
    "ProviderError",
    "RateLimited",
    "RetryPolicy",
    "SendReceipt",
    "TemplateError",
    "Twilio",
    "Undeliverable",
    "UnsupportedMessage",
    "WebhookReader",
    "WindowClosed",
    "classify_error",
    "register_error_codes",
]
