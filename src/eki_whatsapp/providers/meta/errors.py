"""Meta's error codes (Graph API ``error.code``, status webhook ``errors[].code``) as typed errors.

The codes and their meaning: docs/wire.md §5.2.
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
    131026: Undeliverable,  # undeliverable from this number (docs/routing.md, failover)
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
#: Pair rate limit: Meta advises waiting at least 6 s for that recipient.
PAIR_LIMIT = 131056

#: Codes a support person meets, as the key of their explanation in plain words
#: (:func:`eki_whatsapp.conversations.explain_error`).
EXPLAINED: dict[int, str] = {
    131047: "window",
    470: "window",  # the window code of older API versions
    131026: "not_on_whatsapp",
    131049: "marketing_limit",
    130429: "account_rate",
    131056: "user_rate",
    132001: "template",
    190: "meta_token",
}

classify = CodeTable(
    CODES,
    ranges=(
        (132000, 133000, TemplateError),  # the 132xxx family is about templates
        (200, 300, AuthError),  # permission errors
    ),
    not_retryable=frozenset({131048, 133016}),  # spam and registration limits: waiting does not help soon
)

register_error_codes("meta", classify)
