"""Routing: which provider sends each outbound message, and the outbound log.

Policies (``WHATSAPP_PROVIDER``):

* ``meta`` / ``twilio`` — only that provider.
* ``dual`` — a reply goes out on the channel the message came in on (``reply-channel``); a
  business-initiated free-form message uses the provider where the user's 24-hour window is
  open (``window-open``); a template goes to the cheapest provider priced with the window in
  mind (ties to the open window: ``window-open``); with no window open anywhere: a provider
  whose monthly free allowance covers it (``free-allowance``), else the weights if configured
  (``weighted``), else the cheaper provider by the price table (``cheapest``). When the chosen
  provider fails with an error another provider could avoid (:class:`ProviderDown`,
  :class:`RateLimited` after the provider's own retries, :class:`AuthError`) the message goes
  out through another one (``failover:ProviderDown``); a provider that keeps failing is
  skipped for a cool-down (circuit breaker) and then probed.

In every policy a free-form message to a user whose window is closed is not sent blindly: the
configured fallback template goes instead (``fallback-template``), or :class:`WindowClosed` is
raised. Window failures reported later by status webhooks (131047 / 63016) are handled the same
way.

The parts:

* :mod:`~eki_whatsapp.routing.policy` — the decision as a pure function of plain values;
* :mod:`~eki_whatsapp.routing.breaker` — circuit breakers, one per provider;
* :mod:`~eki_whatsapp.routing.router` — :class:`Router`: gathers the facts, sends, fails over;
* :mod:`~eki_whatsapp.routing.plan` — the one send loop, with a sync and an async runner;
* :mod:`~eki_whatsapp.routing.receipts` — the receipts of keyed sends (never send twice);
* :mod:`~eki_whatsapp.routing.records` — what is recorded of a send: breaker, price, log, receipt;
* :mod:`~eki_whatsapp.routing.facts` — the windows, breakers and prices a decision reads;
* :mod:`~eki_whatsapp.routing.fallback` — the template sent when the window is closed;
* :mod:`~eki_whatsapp.routing.recovery` — late failures from status webhooks, partial sends;
* :mod:`~eki_whatsapp.routing.log` — the outbound log rows;
* :mod:`~eki_whatsapp.routing.outbox` — sends kept and retried when no provider could take them;
* :mod:`~eki_whatsapp.routing.unknown` — kept sends whose outcome is unknown, resolved by status.
"""

from __future__ import annotations

from .breaker import Breakers, CircuitBreaker
from .fallback import Fallback, FallbackTemplate
from .kinds import coerce_message, is_template, message_kind, message_text
from .log import user_key as _user_key  # noqa: F401  (the name before the split into modules)
from .plan import SendOptions
from .policy import FAILOVER_ERRORS, Choice, Decision, Price, Situation, choose
from .router import Router

__all__ = [
    "FAILOVER_ERRORS",
    "Breakers",
    "Choice",
    "CircuitBreaker",
    "Decision",
    "Fallback",
    "FallbackTemplate",
    "Price",
    "Router",
    "SendOptions",
    "Situation",
    "choose",
    "coerce_message",
    "is_template",
    "message_kind",
    "message_text",
]
