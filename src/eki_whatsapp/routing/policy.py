"""The routing policy as pure functions: facts in, a choice out.

Nothing here reads the Store, the clock or the network. :func:`choose` decides from a
:class:`Situation` of plain values — windows, breaker availability, prices, the message kind,
the inbound channel — so each rule can be checked with a few dicts::

    choose(Situation(candidates=("meta", "twilio"), windows={"meta": False, "twilio": True}, ...))

The :class:`~eki_whatsapp.routing.Router` gathers those facts (windows from the Store, breakers,
quotes from the ledger) and performs the choice. It passes mappings that compute a value on
first read, so a rule that never looks at a price costs no quote; the rules only index them.

Rules of ``dual``, in order: a reply goes out on its inbound channel (``reply-channel``).
Anything else goes only to the business numbers the user can be reached on — those they wrote
to or opted in on (``reachable``; a user nothing is known of is reachable everywhere). Among
those: a free-form message goes where the user's window is open (``window-open``, the cheaper if
several); a template (or the fallback template) goes to the cheapest, priced with the windows in
mind (``window-open`` when that provider's window is open, else ``cheapest``); a free allowance
makes a provider free only for a message that saves at least the allowance's bar
(``free-allowance``, see :meth:`eki_whatsapp.costs.Costs.allowance_bar`); the weights split
providers of equal price (``weighted``), or every message with ``balance`` (load balancing).
After a failure another provider could avoid, the same rules run over the providers not yet
tried (reason ``failover:<error>``); a number the user is not reachable on is used only then,
and only with ``other_number`` allowed (reason ``failover:<error>:other-number``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ..errors import ConfigError
from ..messages import Message
from ..providers.base import (
    AuthError,
    ProviderDown,
    ProviderError,
    RateLimited,
    Undeliverable,
    WindowClosed,
)

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
FAILOVER_ERRORS: tuple[type[ProviderError], ...] = (ProviderDown, RateLimited, AuthError, Undeliverable)

#: The suffix of the reason of a send through a number the user is not reachable on.
OTHER_NUMBER = ":other-number"


@dataclass(frozen=True, slots=True)
class Price:
    """What one message would cost on one provider.

    Attributes:
        amount: the real cost, ``None`` when it cannot be told (unknown costs sort last).
        free_allowance: the provider's monthly free allowance could cover the message.
        allowance_bar: the least saving that earns a free slot now (``None``: any saving).
    """

    amount: Decimal | None
    free_allowance: bool = False
    allowance_bar: Decimal | None = None


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
        weights: ``WHATSAPP_WEIGHTS``: how providers of equal price share messages.
        draw: a random number in [0, 1); called only when the weights decide.
        reachable: the providers whose business number the user wrote to or opted in on
            (empty: nothing known of the user, every number may write first).
        balance: ``WHATSAPP_BALANCE``: the weights split messages whatever the price.
        other_number: a failover may use a number the user is not reachable on.
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
    reachable: Collection[str] = frozenset()
    balance: bool = False
    other_number: bool = True


@dataclass(frozen=True, slots=True)
class Choice:
    """What the policy chose: a provider, why, and whether the fallback template must go.

    Attributes:
        provider: the provider to send through.
        reason: the reason recorded in the log row.
        in_window: the user's window is open on that provider.
        fallback: a free-form message meets a closed window: send the fallback template instead.
        basis: with ``fallback``, the rule that picked the provider (``cheapest``, ...).
        free_allowance: the message takes a slot of the provider's free allowance.
    """

    provider: str
    reason: str
    in_window: bool
    fallback: bool = False
    basis: str | None = None
    free_allowance: bool = False


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
        free_allowance: the message takes a slot of the provider's free allowance.
    """

    provider: str
    reason: str
    message: Message
    category: str | None
    in_window: bool
    fallback: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    free_allowance: bool = False


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
        # (Another provider's window is read only when the inbound channel is not healthy.)
        if inbound in healthy or not (
            s.template or s.has_fallback or any(windows[p] for p in healthy if p != inbound)
        ):
            # (With its breaker open, the channel is still better than no way at all.)
            return _fit(s, inbound, "reply-channel", windows[inbound])
        prefix = "failover:circuit-open"
    if len(pool) == 1 and s.policy != "dual":
        return _fit(s, pool[0], prefix or "policy", windows[pool[0]])

    # Business-initiated (or a reply that cannot use its channel): only the numbers the user
    # can be reached on; another number only as a failover that the settings allow.
    eligible, prefix = _reachable(s, pool, healthy, prefix)
    if not eligible:
        return None
    if not s.template:
        # Free-form: only where the window is open — a sick provider of the user's with its
        # window open rather than a template from elsewhere.
        open_now = [p for p in eligible if windows[p]]
        if not open_now:
            open_now = [p for p in pool if windows[p]]
            if open_now and prefix is not None and prefix.endswith(OTHER_NUMBER):
                prefix = prefix[: -len(OTHER_NUMBER)]
        if open_now:
            name, _, _ = _priced(s, open_now, s.category)
            return _fit(s, name, prefix or "window-open", True)
    category = s.category if s.template else s.fallback_category
    name, why, free = _priced(s, eligible, category)
    return _fit(s, name, prefix or why, windows[name], free)


def _reachable(
    s: Situation, pool: Sequence[str], healthy: Sequence[str], prefix: str | None
) -> tuple[list[str], str | None]:
    """The providers a business-initiated message may use, and the reason prefix (``None``:
    the rules name it)."""
    reach = s.reachable
    if not reach:  # nothing known of the user: any number may write first
        return list(healthy), prefix
    mine = [p for p in pool if p in reach]
    ready = [p for p in mine if s.available[p]]
    if ready:
        return ready, prefix
    others = [p for p in pool if p not in reach]
    others_ready = [p for p in others if s.available[p]]
    if s.other_number and others_ready and (mine or prefix is not None):
        # Theirs are down (breaker open) or failed already: another number, said in the reason.
        return others_ready, (prefix or "failover:circuit-open") + OTHER_NUMBER
    if mine:
        return mine, prefix  # their own sick number rather than another one
    if prefix is not None:
        if s.other_number and others:
            return others, prefix + OTHER_NUMBER
        return [], prefix
    # None of their numbers can carry this message at all (not a failover): say so in the reason.
    return list(healthy), "cheapest" + OTHER_NUMBER


def _priced(s: Situation, names: Sequence[str], category: str | None) -> tuple[str, str, bool]:
    """The provider for a message among ``names``: ``(name, reason, takes a free slot)``.

    Price decides. A free allowance makes a provider free only when the message saves at least
    the allowance's bar (the saving is what the message would cost otherwise: the cheapest real
    price). The weights split providers of the same price — or, with ``balance``, every message.
    Ties without weights go to an open window, then to the policy's order (Meta first).
    """
    if len(names) == 1 and not (names[0] in s.allowances and s.prices[(names[0], category)].free_allowance):
        return names[0], "window-open" if s.windows[names[0]] else "cheapest", False
    if s.balance and s.weights:
        balanced = _weighted(s, names)
        if balanced is not None:
            return balanced, "weighted", False
    prices = {p: s.prices[(p, category)] for p in names}
    known = [price.amount for price in prices.values() if price.amount is not None]
    saving = min(known) if known else None
    effective: dict[str, tuple[bool, Decimal, bool]] = {}  # name -> (unknown, amount, free slot)
    for name, price in prices.items():
        free = (
            name in s.allowances
            and price.free_allowance
            and saving is not None
            and saving > 0
            and saving >= (price.allowance_bar or 0)
        )
        amount = Decimal(0) if free else price.amount
        effective[name] = (amount is None, amount or Decimal(0), free)
    best = min(effective[p][:2] for p in names)
    tied = [p for p in names if effective[p][:2] == best]
    name = tied[0]
    why = "cheapest"
    if len(tied) > 1:
        weighted = _weighted(s, tied) if s.weights else None
        if weighted is not None:
            name = weighted
            why = "weighted"
        else:
            name = next((p for p in tied if s.windows[p]), tied[0])
    free = effective[name][2]
    if free:
        why = "free-allowance"
    elif why == "cheapest" and s.windows[name]:
        why = "window-open"
    return name, why, free


def _weighted(s: Situation, names: Sequence[str]) -> str | None:
    """A weighted random pick among ``names`` (``None`` when none of them has a weight)."""
    weights = {p: s.weights.get(p, 0.0) for p in names}
    total = sum(weights.values())
    if total <= 0:
        return None
    point = s.draw() * total
    for name, weight in weights.items():
        if weight <= 0:
            continue
        point -= weight
        if point < 0:
            return name
    return max(weights, key=lambda p: weights[p])


def _fit(s: Situation, name: str, reason: str, in_window: bool, free: bool = False) -> Choice:
    """The choice, marked for the fallback template when a free-form message meets a closed window."""
    if in_window or s.template:
        return Choice(name, reason, in_window, free_allowance=free)
    keep = reason.startswith("failover:") or reason.endswith(OTHER_NUMBER)
    return Choice(
        name,
        reason if keep else "fallback-template",
        in_window,
        fallback=True,
        basis=reason,
        free_allowance=free,
    )


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
    another provider could avoid (the same :data:`FAILOVER_ERRORS` as at send time, an
    undeliverable message included) fails the message over (``dual`` only) when it can be sent
    again from its log row (``has_text``: a text, or a template with plain values); anything
    else is left alone.
    """
    if isinstance(error, WindowClosed):
        return "ignore" if kind == "template" or fallback else "fallback"
    if isinstance(error, FAILOVER_ERRORS) and kind in ("text", "template") and has_text and policy == "dual":
        return "failover"
    return "ignore"
