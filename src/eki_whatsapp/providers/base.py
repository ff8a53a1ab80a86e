"""What every provider implements, what a send returns, and the one error hierarchy.

Error codes of both providers map onto the same classes, whether the error comes back from a
send (HTTP response) or later in a status webhook (``StatusUpdate.error``)::

    ProviderError
    ├── AuthError          token expired/invalid, wrong account (no retry)
    ├── RateLimited        throughput or pair limits (retryable)
    ├── WindowClosed       24-hour window closed: send a template (no retry)
    ├── InvalidRecipient   not a WhatsApp user, opted out, bad number (no retry)
    ├── TemplateError      template missing, paused, parameter mismatch (no retry)
    ├── MediaError         media could not be fetched/uploaded (no retry)
    ├── MessageRejected    invalid request or content refused (no retry)
    └── ProviderDown       5xx, timeouts, connection errors (retryable)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from ..errors import EkiWhatsAppError

if TYPE_CHECKING:
    from ..events import MediaRef

ProviderName = Literal["meta", "twilio"]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
class ProviderError(EkiWhatsAppError):
    """A provider refused or failed a request.

    Attributes:
        provider: ``"meta"`` or ``"twilio"``.
        code: the provider's error code (Graph ``error.code`` / Twilio ``code``), if any.
        message: the provider's message followed by what to do about it.
        retryable: whether sending the same request again later may succeed.
        http_status: the HTTP status of the response, when the error came from a request.
        raw: the provider's error object (never contains credentials).
        retry_after: seconds the provider asked us to wait (``Retry-After``), if given.
        attempts: how many HTTP attempts were made before giving up (0 when the message was
            refused before any request, e.g. a message kind the provider cannot send).
        sent_message_ids: ids of the parts that did go out when a text split in several
            messages failed part-way (empty otherwise).
    """

    retryable: ClassVar[bool] = False
    hint: ClassVar[str] = ""
    attempts: int = 1
    sent_message_ids: tuple[str, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: int | None = None,
        http_status: int | None = None,
        raw: Any = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.provider = provider
        self.code = code
        self.http_status = http_status
        self.raw = raw
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable  # type: ignore[misc]
        self.provider_message = message
        text = f"{provider}"
        if code is not None:
            text += f" error {code}"
        text += f": {message}"
        if self.hint:
            text += f" — {self.hint}"
        self.message = text
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.provider_message, self.__dict__))


def _rebuild_error(cls: type[ProviderError], message: str, state: dict[str, Any]) -> ProviderError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", message))
    err.__dict__.update(state)
    return err


class AuthError(ProviderError):
    hint = (
        "the credentials were refused. For Meta, a temporary access token expires after 24 hours: "
        "create a permanent System User token (Business Settings > Users > System users) with the "
        "whatsapp_business_messaging permission and put it in META_WHATSAPP_TOKEN. For Twilio, check "
        "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."
    )


class RateLimited(ProviderError):
    retryable = True
    hint = "too many messages; slow down and retry after a pause"


class WindowClosed(ProviderError):
    hint = (
        "the user's 24-hour customer service window is closed: only an approved template can "
        "be sent until the user writes again"
    )


class InvalidRecipient(ProviderError):
    hint = "the recipient cannot receive this message (not on WhatsApp, opted out or invalid number)"


class TemplateError(ProviderError):
    hint = "check the template name, language, approval status and parameter count"


class MediaError(ProviderError):
    hint = "check that the media URL is public HTTPS, the type is supported and within size limits"


class MessageRejected(ProviderError):
    hint = "the request was refused as invalid; fix the message or the sender configuration"


class UnsupportedMessage(MessageRejected):
    """The provider cannot send this kind of message (e.g. a reaction on Twilio); nothing was sent."""

    hint = "this provider cannot send it; send another kind of message or use the other provider"


class ProviderDown(ProviderError):
    retryable = True
    hint = "the provider is unavailable or unreachable; retry later or fail over"


# code → class, per provider. Codes not listed fall back on the HTTP status.
_META_CODES: dict[int, type[ProviderError]] = {
    0: AuthError,
    190: AuthError,
    3: AuthError,
    10: AuthError,
    131031: AuthError,
    4: RateLimited,
    80007: RateLimited,
    130429: RateLimited,
    131048: RateLimited,
    131056: RateLimited,
    133016: RateLimited,
    131047: WindowClosed,
    131026: InvalidRecipient,
    131021: InvalidRecipient,
    131049: InvalidRecipient,
    131050: InvalidRecipient,
    130472: InvalidRecipient,
    131062: InvalidRecipient,
    131052: MediaError,
    368: MessageRejected,
    131051: MessageRejected,
    131053: MediaError,
    1: ProviderDown,
    2: ProviderDown,
    131000: ProviderDown,
    131016: ProviderDown,
    131057: ProviderDown,
    133004: ProviderDown,
}
# Meta codes that are terminal even though their class is usually retryable (and vice versa).
_META_NOT_RETRYABLE = {131048, 133016}

_TWILIO_CODES: dict[int, type[ProviderError]] = {
    20003: AuthError,
    20404: MessageRejected,
    63001: AuthError,
    63007: AuthError,
    20429: RateLimited,
    63017: RateLimited,
    63018: RateLimited,
    63038: RateLimited,
    63016: WindowClosed,
    21211: InvalidRecipient,
    21610: InvalidRecipient,
    63003: InvalidRecipient,
    63024: InvalidRecipient,
    63032: InvalidRecipient,
    63049: InvalidRecipient,
    63027: TemplateError,
    63028: TemplateError,
    21654: TemplateError,
    21656: TemplateError,
    63021: MessageRejected,
    63005: MessageRejected,
    63013: MessageRejected,
    21617: MessageRejected,
    21658: MessageRejected,
    30500: ProviderDown,
}
_TWILIO_NOT_RETRYABLE = {63038}


def classify_error(
    provider: str,
    code: int | None,
    message: str,
    *,
    http_status: int | None = None,
    raw: Any = None,
    retry_after: float | None = None,
    transient: bool | None = None,
) -> ProviderError:
    """Map a provider error code (and/or HTTP status) to the typed exception.

    Works for send responses and for errors that arrive later in status webhooks.
    """
    cls: type[ProviderError] | None = None
    not_retryable: set[int] = set()
    if provider == "meta":
        not_retryable = _META_NOT_RETRYABLE
        if code is not None:
            cls = _META_CODES.get(code)
            if cls is None and 132000 <= code < 133000:
                cls = TemplateError
            if cls is None and 200 <= code <= 299:
                cls = AuthError
    elif provider == "twilio":
        not_retryable = _TWILIO_NOT_RETRYABLE
        if code is not None:
            cls = _TWILIO_CODES.get(code)
            if cls is None and 63000 <= code < 64000:
                cls = MessageRejected
    if cls is None:
        if http_status is not None and http_status >= 500:
            cls = ProviderDown
        elif http_status in (401, 403):
            cls = AuthError
        elif http_status == 429:
            cls = RateLimited
        else:
            cls = MessageRejected
    retryable: bool | None = None
    if code is not None and code in not_retryable:
        retryable = False
    if transient is True:
        retryable = True
    return cls(
        message or "unknown error",
        provider=provider,
        code=code,
        http_status=http_status,
        raw=raw,
        retry_after=retry_after,
        retryable=retryable,
    )


# --------------------------------------------------------------------------------------------
# Send results and the provider protocol
# --------------------------------------------------------------------------------------------
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


@runtime_checkable
class Provider(Protocol):
    """A way to send WhatsApp messages. Implemented by ``MetaCloud`` and ``Twilio``.

    ``message`` is one of the models in :mod:`eki_whatsapp.messages`.
    """

    name: ProviderName

    @property
    def business_number(self) -> str:
        """Identifier of the sending number (Meta phone-number id / Twilio number digits)."""
        ...

    def send(self, to: str, message: Any) -> SendReceipt: ...

    async def send_async(self, to: str, message: Any) -> SendReceipt: ...

    def download_media(self, ref: MediaRef) -> bytes: ...

    async def download_media_async(self, ref: MediaRef) -> bytes: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...
