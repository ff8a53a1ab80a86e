"""Twilio's error codes (REST ``code``, status callback ``ErrorCode``) as typed errors.

The codes and their meaning: docs/wire.md §9 (each code has a page at
https://www.twilio.com/docs/api/errors/NNNNN). Every 63xxx code Twilio documents for the
WhatsApp channel is listed; an unlisted 63xxx is a final :class:`MessageRejected`.
"""

from __future__ import annotations

from ..errors import (
    AuthError,
    CodeTable,
    InvalidRecipient,
    MediaError,
    MessageRejected,
    ProviderDown,
    ProviderError,
    RateLimited,
    TemplateError,
    Undeliverable,
    WindowClosed,
    register_error_codes,
)

CODES: dict[int, type[ProviderError]] = {
    20003: AuthError,
    20404: MessageRejected,
    20429: RateLimited,
    21211: InvalidRecipient,
    21610: InvalidRecipient,
    21617: MessageRejected,
    21654: TemplateError,
    21656: TemplateError,
    21658: MessageRejected,
    30500: ProviderDown,
    # --- the WhatsApp channel (63xxx) ---
    63001: AuthError,  # channel could not authenticate the request
    63002: AuthError,  # channel could not find the From address
    63003: InvalidRecipient,  # channel could not find the To address
    63005: MessageRejected,  # channel did not accept the content
    63006: MessageRejected,  # content could not be formatted for the channel
    63007: AuthError,  # no channel for the From address
    63008: AuthError,  # channel module misconfigured
    63009: ProviderDown,  # channel provider returned an internal service error
    63010: ProviderDown,  # Twilio's platform had an internal error
    63011: MessageRejected,  # channel returned an invalid request error
    63012: ProviderDown,  # WhatsApp internal error / service not ready (like Meta 131000)
    63013: MessageRejected,  # channel policy violation
    63014: InvalidRecipient,  # the user blocked the business
    63015: InvalidRecipient,  # sandbox: the number has not joined
    63016: WindowClosed,  # free-form outside the 24-hour window
    63017: RateLimited,
    63018: RateLimited,
    63019: MediaError,  # media failed to download
    63020: AuthError,  # Business Manager invitation not accepted
    63021: MessageRejected,  # invalid content
    63022: AuthError,  # invalid vname certificate
    63023: MessageRejected,  # channel generic error
    63024: Undeliverable,  # Twilio's code for WhatsApp's 131026, message undeliverable
    63027: TemplateError,  # template does not exist for the language
    63028: TemplateError,  # parameter count mismatch
    63029: InvalidRecipient,  # the receiver cannot receive this message (old client)
    63030: MessageRejected,  # unsupported parameter for this kind of message
    63031: InvalidRecipient,  # same From and To
    63032: InvalidRecipient,  # WhatsApp experiment / limitation for this user
    63033: MessageRejected,  # too many media
    63034: MediaError,  # media exceeds the size limit
    63036: InvalidRecipient,  # the number is not a WhatsApp number
    63037: MediaError,  # media upload to the channel failed (Twilio retries it)
    63038: RateLimited,  # account daily limit (final: not_retryable below)
    63040: TemplateError,  # template rejected
    63041: TemplateError,  # template paused
    63042: TemplateError,  # template disabled
    63049: InvalidRecipient,  # Meta chose not to deliver the marketing message
    63051: AuthError,  # WhatsApp Business Account locked
}
#: Codes a support person meets, as the key of their explanation in plain words
#: (:func:`eki_whatsapp.conversations.explain_error`).
EXPLAINED: dict[int, str] = {
    63016: "window",
    63024: "invalid_user",
    63018: "sender_rate",
    21211: "invalid_number",
}

classify = CodeTable(
    CODES,
    ranges=((63000, 64000, MessageRejected),),  # the WhatsApp channel's own refusals
    not_retryable=frozenset({63038}),  # the account's daily limit: retrying today cannot succeed
)

register_error_codes("twilio", classify)
