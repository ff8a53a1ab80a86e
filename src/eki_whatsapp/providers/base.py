"""What a provider is: the faces it offers the core, and what a send returns.

A provider is one package under ``providers/`` (``meta/``, ``twilio/``, or your own) that owns
its wire format end to end. It offers the core two faces:

* a :class:`WebhookReader` — ``detect`` its requests, ``verify`` them (handshakes, signatures),
  ``parse`` them into events and say how to ``ack`` them;
* a :class:`Provider` (the sender) — ``send`` messages, ``download_media``, ``close``.

and, optionally, an error-code table (:func:`~eki_whatsapp.providers.errors.register_error_codes`)
and doctor checks. ``Bot(providers={...})`` takes senders; a sender that is also a
``WebhookReader`` reads its own webhooks (see docs/writing-a-provider.md).

The error hierarchy lives in :mod:`eki_whatsapp.providers.errors` and is re-exported here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..webhook import WebhookResponse
from .errors import (
    AuthError,
    InvalidRecipient,
    MediaError,
    MessageRejected,
    OutcomeUnknown,
    ProviderDown,
    ProviderError,
    RateLimited,
    TemplateError,
    Undeliverable,
    UnsupportedMessage,
    WindowClosed,
    classify_error,
    register_error_codes,
)

if TYPE_CHECKING:
    from ..events import Event, MediaRef
    from ..messages import Message
    from ..webhook import WebhookRequest

__all__ = [
    "AuthError",
    "InvalidRecipient",
    "MediaError",
    "MessageRejected",
    "OutcomeUnknown",
    "PayloadError",
    "Provider",
    "ProviderDown",
    "ProviderError",
    "ProviderName",
    "RateLimited",
    "SendReceipt",
    "TemplateError",
    "Undeliverable",
    "UnsupportedMessage",
    "WebhookReader",
    "WindowClosed",
    "can_send",
    "classify_error",
    "json_object",
    "refuse",
    "register_error_codes",
]

#: A provider's name: ``"meta"``, ``"twilio"``, or the name of one you register.
ProviderName = str

logger = logging.getLogger("eki_whatsapp.webhook")


class PayloadError(ValueError):
    """A verified request whose body is not shaped like the provider's webhooks (answered 400)."""


def json_object(body: bytes) -> dict[str, Any]:
    """A webhook body that must be a JSON object; anything else raises :class:`PayloadError`."""
    try:
        # RecursionError: absurdly nested input; UnicodeDecodeError: not UTF-8/16/32
        decoded = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise PayloadError("malformed JSON body") from None
    if not isinstance(decoded, dict):
        raise PayloadError("JSON body is not an object")
    return decoded


def refuse(status: int, reason: str, **headers: str) -> WebhookResponse:
    """A plain-text refusal (logged as a warning); ``reason`` must never contain a secret."""
    logger.warning("webhook rejected with %s: %s", status, reason)
    response = WebhookResponse.text(status, reason)
    if headers:
        response = WebhookResponse(status, {**response.headers, **headers}, response.body)
    return response


@runtime_checkable
class WebhookReader(Protocol):
    """The inbound face of a provider: the pipeline runs detect → verify → parse → ack.

    Attributes:
        name: the provider's name; every event it parses carries it as ``event.provider``.
        ack: the answer to a request whose events were recorded (e.g. ``200 OK``, empty TwiML).
    """

    name: str
    ack: WebhookResponse

    def detect(self, request: WebhookRequest) -> bool:
        """Whether ``request`` is one of this provider's (cheap: headers, method, content type)."""
        ...

    def verify(self, request: WebhookRequest) -> WebhookResponse | None:
        """``None`` when the request is authentic and carries events; otherwise the answer to
        give right away (a refusal from :func:`refuse`, or a handshake's reply)."""
        ...

    def parse(self, request: WebhookRequest) -> list[Event]:
        """The events of a verified request, in order; raises :class:`PayloadError`."""
        ...


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What a provider answered to a send.

    Attributes:
        provider: who sent it.
        message_id: the wamid / MessageSid of the (first) message sent.
        status: the provider's immediate status (``accepted``, ``queued``, ...).
        raw: the provider's response body.
        attempts: how many HTTP attempts it took (retries included).
        message_ids: every message id, when one logical message went out as several
            (long text split in parts); ``message_ids[0] == message_id``.
        to: the recipient as sent.
        kind: the outbound message kind (``text``, ``image``, ``template``, ...).
        sent_at: when the provider accepted it.
        rendering: how a message without a native form went out, when that was a choice
            (Twilio buttons: ``content:created``, ``content:cached`` or ``numbered-text``).
    """

    provider: ProviderName
    message_id: str
    status: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    attempts: int = 1
    message_ids: tuple[str, ...] = ()
    to: str | None = None
    kind: str | None = None
    sent_at: datetime | None = None
    rendering: str | None = None


@runtime_checkable
class Provider(Protocol):
    """The sending face of a provider. Implemented by ``MetaCloud`` and ``Twilio``.

    ``message`` is one of the models in :mod:`eki_whatsapp.messages`. A provider may also offer
    ``supports(message) -> bool`` (whether it can carry that kind; see :func:`can_send`): the
    router asks it before choosing, so failover never picks a provider that would refuse, and
    ``free_allowance: int`` (messages a month it does not charge for; see
    :func:`eki_whatsapp.providers.free_allowances`).
    """

    name: ProviderName

    @property
    def business_number(self) -> str:
        """Identifier of the sending number (Meta phone-number id / Twilio number digits)."""
        ...

    def send(self, to: str, message: Message) -> SendReceipt: ...

    async def send_async(self, to: str, message: Message) -> SendReceipt: ...

    def download_media(self, ref: MediaRef) -> bytes: ...

    async def download_media_async(self, ref: MediaRef) -> bytes: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def can_send(provider: Provider, message: Message | str) -> bool:
    """Whether ``provider`` can carry ``message``: its ``supports(message)``, or ``True`` for a
    provider that does not say (it refuses at send time instead)."""
    supports = getattr(provider, "supports", None)
    if supports is None:
        return True
    return bool(supports(message))
