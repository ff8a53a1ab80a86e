"""The one error hierarchy of every provider, and how a provider's error code becomes one.

Error codes of every provider map onto the same classes, whether the error comes back from a
send (HTTP response) or later in a status webhook (``StatusUpdate.error``)::

    ProviderError
    ├── AuthError          token expired/invalid, wrong account (no retry)
    ├── RateLimited        throughput or pair limits (retryable)
    ├── WindowClosed       24-hour window closed: send a template (no retry)
    ├── InvalidRecipient   not a WhatsApp user, opted out, bad number (no retry)
    │   └── Undeliverable  this number could not deliver to the user (another number may)
    ├── TemplateError      template missing, paused, parameter mismatch (no retry)
    ├── MediaError         media could not be fetched/uploaded (no retry)
    ├── MessageRejected    invalid request or content refused (no retry)
    │   └── UnsupportedMessage  this provider cannot send that kind of message
    ├── OutcomeUnknown     the request left but its answer did not come (no blind retry)
    └── ProviderDown       5xx, connection errors, timeouts before sending (retryable)

Each provider package owns its code table (``providers/meta/errors.py``,
``providers/twilio/errors.py``) and registers it with :func:`register_error_codes`; codes a table
does not know fall back on the HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, ClassVar

from ..errors import EkiWhatsAppError

__all__ = [
    "AuthError",
    "CodeClassifier",
    "CodeTable",
    "InvalidRecipient",
    "MediaError",
    "MessageRejected",
    "OutcomeUnknown",
    "ProviderDown",
    "ProviderError",
    "RateLimited",
    "TemplateError",
    "Undeliverable",
    "UnsupportedMessage",
    "WindowClosed",
    "classify_error",
    "register_error_codes",
]


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
        text = f"{text}: {message}" if text else message  # no provider: refused before choosing one
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


class Undeliverable(InvalidRecipient):
    """The message could not be delivered to the user from this business number (Meta 131026,
    Twilio 63024): the user may not have accepted the terms, run an old app, or have blocked
    this number. Another number the user wrote to may still reach them, so the router fails
    it over like an outage — immediately or when a status webhook reports it later."""

    hint = "the user could not be reached from this number; another number they wrote to may reach them"


class TemplateError(ProviderError):
    hint = "check the template name, language, approval status and parameter count"


class MediaError(ProviderError):
    hint = "check that the media URL is public HTTPS, the type is supported and within size limits"


class MessageRejected(ProviderError):
    hint = "the request was refused as invalid; fix the message or the sender configuration"


class UnsupportedMessage(MessageRejected):
    """The provider cannot send this kind of message (e.g. a reaction on Twilio); nothing was sent."""

    hint = "this provider cannot send it; send another kind of message or use the other provider"


class OutcomeUnknown(ProviderError):
    """A send whose request may have reached the provider: the answer timed out, or the
    connection broke, after the request was sent. The message may be on its way, so it is not
    retried or failed over blindly: the router marks it ``unknown`` and waits for a status
    webhook carrying :attr:`correlation` (docs/deployment.md, "Ambiguous sends").

    Attributes:
        correlation: the key sent with the request that a status webhook echoes back
            (``StatusUpdate.correlation``); ``None`` when the provider could not carry one.
    """

    hint = "the provider may have accepted it; wait for its status before sending it again"
    correlation: str | None = None


class ProviderDown(ProviderError):
    retryable = True
    hint = "the provider is unavailable or unreachable; retry later or fail over"


#: ``classifier(code) -> (class or None, retryable override or None)``.
CodeClassifier = Callable[[int], "tuple[type[ProviderError] | None, bool | None]"]

_CLASSIFIERS: dict[str, CodeClassifier] = {}
#: Built-in providers whose table is imported on first use (keeps ``import eki_whatsapp`` light).
_BUILTIN_TABLES = {
    "meta": "eki_whatsapp.providers.meta.errors",
    "twilio": "eki_whatsapp.providers.twilio.errors",
}


@dataclass(frozen=True)
class CodeTable:
    """A provider's codes as a :data:`CodeClassifier`: exact codes first, then code ranges.

    Args:
        codes: code → class.
        ranges: ``(first, end, class)``: codes ``first <= code < end`` not listed in ``codes``.
        not_retryable: codes that are terminal although their class is usually retryable.
    """

    codes: Mapping[int, type[ProviderError]]
    ranges: tuple[tuple[int, int, type[ProviderError]], ...] = ()
    not_retryable: frozenset[int] = field(default_factory=frozenset)

    def __call__(self, code: int) -> tuple[type[ProviderError] | None, bool | None]:
        cls = self.codes.get(code)
        if cls is None:
            cls = next((c for first, end, c in self.ranges if first <= code < end), None)
        return cls, (False if code in self.not_retryable else None)


def register_error_codes(provider: str, classifier: CodeClassifier) -> None:
    """Teach :func:`classify_error` the error codes of ``provider``.

    ``classifier(code)`` returns the :class:`ProviderError` subclass for that code (``None`` when
    unknown: the HTTP status decides) and whether it is retryable (``None``: the class decides).
    """
    _CLASSIFIERS[provider] = classifier


def _classifier(provider: str) -> CodeClassifier | None:
    found = _CLASSIFIERS.get(provider)
    if found is None and provider in _BUILTIN_TABLES:
        import_module(_BUILTIN_TABLES[provider])  # registers itself
        found = _CLASSIFIERS.get(provider)
    return found


def _by_http_status(http_status: int | None) -> type[ProviderError]:
    if http_status is not None and http_status >= 500:
        return ProviderDown
    if http_status in (401, 403):
        return AuthError
    if http_status == 429:
        return RateLimited
    return MessageRejected


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
    retryable: bool | None = None
    if code is not None:
        classifier = _classifier(provider)
        if classifier is not None:
            cls, retryable = classifier(code)
    if cls is None:
        cls = _by_http_status(http_status)
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
