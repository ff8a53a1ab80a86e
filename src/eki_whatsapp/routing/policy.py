"""The routing policy as pure functions: facts in, a choice out.

Nothing here reads the Store, the clock or the network. :func:`choose` decides from a
:class:`Situation` of plain values — windows, breaker availability, prices, the message kind,
the inbound channel — so each rule can be checked with a few dicts::

    choose(Situation(candidates=("meta", "twilio"), windows={"meta": False, "twilio": True}, ...))

The :class:`~eki_whatsapp.routing.Router` gathers those facts (windows from the Store, breakers,
quotes from the ledger) and performs the choice. It passes mappings that compute a value on
first read, so a rule that never looks at a price costs no quote; the rules only index them.

Rules of ``dual``, in order: a reply goes out on its inbound channel (``reply-channel``); a
free-form message goes where the user's window is open (``window-open``, the cheaper if several);
a template goes to the cheapest provider priced with the windows in mind (``window-open`` when
that provider's window is open); with no window open anywhere: a provider whose monthly free
allowance covers the message (``free-allowance``), else the weights (``weighted``), else the
cheapest (``cheapest``). After a failure another provider could avoid, the same rules run over
the providers not yet tried (reason ``failover:<error>``).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ..errors import ConfigError
from ..messages import Message
from ..providers.base import AuthError, ProviderDown, ProviderError, RateLimited, WindowClosed

__all__ = [
    "FAILOVER_ERRORS",
    "Choice",
    "Decision",
    "Price",
    "Situation",
    "after_failure",
    "after_late_failure",
    "choose",
]

#: Errors another provider could avoid: the message fails over when one of these is raised.
FAILOVER_ERRORS: tuple[type[ProviderError], ...] = (ProviderDown, RateLimited, AuthError)


@dataclass(frozen=True, slots=True)
class Price:
    """What one message would cost on one provider.

    Attributes:
        amount: the cost, ``None`` when it cannot be told (unknown costs sort last).
        free_allowance: the provider's monthly free allowance would cover the message.
    """

    amount: Decimal | None
    free_allowance: bool = False


@dataclass(slots=True)
class Situation:
    """The facts one routing decision is made from (plain values; mappings are only indexed).

    The policy only reads it. (Not frozen: one is built for every message, and a frozen
    dataclass pays a ``object.__setattr__`` call per field.)

    Attributes:
        candidates: providers that may still send, in the policy's order of preference
            (providers already tried for this message are left out).
        policy: ``WHATSAPP_PROVIDER`` (``dual``, or one provider's name).
        windows: provider → whether the user's 24-hour window is open on its number.
        available: provider → whether its circuit breaker lets a send through.
        template: the message is a template (the only kind allowed outside the window).
        category: the pricing category of the message.
        fallback_category: the pricing category of the fallback template.
        has_fallback: a fallback template is configured.
        inbound: the provider the answered message came in on (``None``: business-initiated).
        explicit: the provider the caller named (``None``: the policy chooses).
        cause: the error class name that made the previous attempt fail (``None``: first try).
        prices: ``(provider, category)`` → :class:`Price`, each priced with that provider's window.
        allowances: the providers that have a monthly free allowance at all.
        weights: ``WHATSAPP_WEIGHTS`` (empty: no load balancing).
        draw: a random number in [0, 1); called only when the weights decide.
    """

    candidates: Sequence[str]
    windows: Mapping[str, bool]
    available: Mapping[str, bool]
    template: bool
    category: str | None
    policy: str = "dual"
    fallback_category: str | None = "utility"
    has_fallback: bool = False
    inbound: str | None = None
    explicit: str | None = None
    cause: str | None = None
    prices: Mapping[tuple[str, str | None], Price] = field(default_factory=dict)
    allowances: Container[str] = frozenset()
    weights: Mapping[str, float] = field(default_factory=dict)
    draw: Callable[[], float] = lambda: 0.0


@dataclass(frozen=True, slots=True)
class Choice:
    """What the policy chose: a provider, why, and whether the fallback template must go.

    Attributes:
        provider: the provider to send through.
        reason: the reason recorded in the log row.
        in_window: the user's window is open on that provider.
        fallback: a free-form message meets a closed window: send the fallback template instead.
        basis: with ``fallback``, the rule that picked the provider (``cheapest``, ...).
    """

    provider: str
    reason: str
    in_window: bool
    fallback: bool = False
    basis: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Which provider sends what, and why (a :class:`Choice` with the message to send).

    Attributes:
        provider: the provider to send through.
        reason: recorded in the log row (``reply-channel``, ``window-open``, ``free-allowance``,
            ``weighted``, ``cheapest``, ``explicit``, ``policy``, ``fallback-template``,
            ``failover:ProviderDown``, ``failover:circuit-open``, ...).
        message: what to send — the message, or the fallback template replacing it.
        category: the pricing category of what is sent.
        in_window: whether the user's 24-hour window is open on that provider.
        fallback: ``True`` when the fallback template replaces a free-form message.
        extra: more detail for the log row (e.g. the choice behind a fallback or failover).
    """

    provider: str
    reason: str
    message: Message
    category: str | None
    in_window: bool
    fallback: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def choose(s: Situation) -> Choice | None:
    """The provider for a message: a first choice (``s.cause is None``) or the next one after a
    failure (``None`` when nothing is left to try).

    Raises:
        ConfigError: a first choice with no provider to choose from.
    """
    if s.explicit is not None:
        if s.cause is not None:
            return None  # an explicit provider is not failed over
        pool: Sequence[str] = (s.explicit,)
    else:
        pool = s.candidates
        if not pool:
            if s.cause is not None:
                return None
            raise ConfigError(
                f"no provider can send with WHATSAPP_PROVIDER={s.policy}: "
                "configure META_* or TWILIO_* credentials (see docs/configuration.md)"
            )
    windows = s.windows
    healthy = [p for p in pool if s.available[p]] or list(pool)
    prefix = f"failover:{s.cause}" if s.cause is not None else None

    if s.explicit is not None:
        return _fit(s, s.explicit, "explicit", windows[s.explicit])
    inbound = s.inbound
    if inbound is not None and s.cause is None and inbound in pool:
        others_can = s.template or s.has_fallback or any(windows[p] for p in healthy if p != inbound)
        if inbound in healthy or not others_can:
            # (With its breaker open, the channel is still better than no way at all.)
            return _fit(s, inbound, "reply-channel", windows[inbound])
        prefix = "failover:circuit-open"
    if len(pool) == 1 and s.policy != "dual":
        return _fit(s, pool[0], prefix or "policy", windows[pool[0]])

    # Business-initiated (or a reply that cannot use its channel).
    if not s.template:
        # Free-form: only where the window is open (a sick provider rather than none).
        open_now = [p for p in healthy if windows[p]] or [p for p in pool if windows[p]]
        if open_now:
            return _fit(s, _cheapest(s, open_now, s.category), prefix or "window-open", True)
    elif any(windows[p] for p in healthy):
        # A template may go anywhere; the open window makes some categories free there, and
        # wins ties so the user hears from the number they wrote to.
        name = _cheapest(s, healthy, s.category)
        reason = "window-open" if windows[name] else "cheapest"
        return _fit(s, name, prefix or reason, windows[name])
    category = s.category if s.template else s.fallback_category
    name, why = _business_choice(s, healthy, category)
    return _fit(s, name, prefix or why, False)


def _business_choice(s: Situation, healthy: Sequence[str], category: str | None) -> tuple[str, str]:
    """No window open: a free allowance, then the weights, then the cheapest."""
    for name in healthy:
        if name in s.allowances and s.prices[(name, category)].free_allowance:
            return name, "free-allowance"
    weights = {p: s.weights.get(p, 0.0) for p in healthy}
    if s.weights and sum(weights.values()) > 0:
        point = s.draw() * sum(weights.values())
        for name, weight in weights.items():
            if weight <= 0:
                continue
            point -= weight
            if point < 0:
                return name, "weighted"
        return max(weights, key=lambda p: weights[p]), "weighted"
    return _cheapest(s, healthy, category), "cheapest"


def _cheapest(s: Situation, names: Sequence[str], category: str | None) -> str:
    if len(names) == 1:
        return names[0]
    priced = []
    for index, name in enumerate(names):
        amount = s.prices[(name, category)].amount
        # Unknown costs sort after known ones; ties go to an open window, then to the
        # policy's order (Meta first).
        priced.append((amount is None, amount or 0, not s.windows[name], index, name))
    return min(priced)[4]


def _fit(s: Situation, name: str, reason: str, in_window: bool) -> Choice:
    """The choice, marked for the fallback template when a free-form message meets a closed window."""
    if in_window or s.template:
        return Choice(name, reason, in_window)
    failover = reason.startswith("failover:")
    return Choice(name, reason if failover else "fallback-template", in_window, fallback=True, basis=reason)


def after_failure(
    error: ProviderError, *, fallback: bool, template: bool
) -> Literal["failover", "fallback", "stop"]:
    """What follows a failed attempt: ``failover`` (another provider could avoid the error),
    ``fallback`` (the window closed: the fallback template on the same provider) or ``stop``."""
    if isinstance(error, FAILOVER_ERRORS):
        return "failover"
    if isinstance(error, WindowClosed) and not fallback and not template:
        return "fallback"
    return "stop"


def after_late_failure(
    error: ProviderError, *, kind: str, fallback: bool, has_text: bool, policy: str
) -> Literal["failover", "fallback", "ignore"]:
    """What follows a failure reported later by a status webhook, for a sent message of ``kind``.

    A window failure of a free-form message is answered with the fallback template; a failure
    another provider could avoid fails a text over (``dual`` only); anything else is left alone.
    """
    if isinstance(error, WindowClosed):
        return "ignore" if kind == "template" or fallback else "fallback"
    if isinstance(error, FAILOVER_ERRORS) and kind == "text" and has_text and policy == "dual":
        return "failover"
    return "ignore"
