"""Twilio's error codes (REST ``code``, status callback ``ErrorCode``) as typed errors.

The codes and their meaning: docs/wire.md §9.
"""

from __future__ import annotations

from ..errors import (
    AuthError,
    InvalidRecipient,
    MessageRejected,
    ProviderDown,
    ProviderError,
    RateLimited,
    TemplateError,
    WindowClosed,
    register_error_codes,
)

CODES: dict[int, type[ProviderError]] = {
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
#: Codes that are terminal even though their class is usually retryable (daily limit reached).
NOT_RETRYABLE = frozenset({63038})


def classify(code: int) -> tuple[type[ProviderError] | None, bool | None]:
    """The error class of a Twilio code (``None``: unknown) and a retryable override."""
    cls = CODES.get(code)
    if cls is None and 63000 <= code < 64000:
        cls = MessageRejected  # the WhatsApp channel's own refusals
    return cls, (False if code in NOT_RETRYABLE else None)


register_error_codes("twilio", classify)
