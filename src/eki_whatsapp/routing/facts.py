"""The facts a routing decision is made from, read for one message.

:class:`Facts` turns the router's world — windows in the Store, breakers, quotes from the
ledger, the settings — into the plain :class:`~eki_whatsapp.routing.policy.Situation` the pure
policy reads. Windows and prices are read lazily: a rule that never looks at a price costs no
quote, and a reply on its own channel reads one window.

One read of the store per provider — the user's latest inbound message on its number — gives
three facts: the window for deciding (closed ``WHATSAPP_WINDOW_MARGIN_SECONDS`` early, so a
free-form message is never sent at the last second), the window for pricing (the provider's
own 24 hours: the margin must not make a free message look charged), and reachability (the user
wrote to that number at some time: one rule, the store's inbound history), to which explicit
opt-ins (:meth:`Facts.opt_in`) are added. A reply to a message still inside the window needs no
read: that message alone makes all three true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..costs import Costs
from ..events import InboundMessage
from ..providers.base import ProviderError, UnsupportedMessage, can_send
from .breaker import Breakers
from .kinds import is_template
from .plan import Pending
from .policy import Price, Situation

if TYPE_CHECKING:
    from .router import Router

__all__ = ["WINDOW", "Facts"]

_REACH = "eki.reach"  # user -> providers the user opted in on (explicit configuration)

#: The customer service window: free-form messages only within 24 hours of the user's last one.
WINDOW = timedelta(hours=24)

K = TypeVar("K")
V = TypeVar("V")


class _Lazy(dict[K, V], Generic[K, V]):
    """A mapping whose values are computed on first read (``compute(key, *args)``): the policy
    pays only for what it reads."""

    def __init__(self, compute: Callable[..., V], *args: Any) -> None:  # starts empty: no dict args
        self._compute = compute
        self._args = args

    def __missing__(self, key: K) -> V:
        value = self[key] = self._compute(key, *self._args)
        return value


class _Available(dict[str, bool]):
    """Whether each provider's breaker lets a send through at ``now`` (read on demand)."""

    def __init__(self, breakers: Breakers, now: datetime) -> None:  # starts empty: no dict args
        self._breakers = breakers
        self._now = now

    def __missing__(self, provider: str) -> bool:
        value = self[provider] = self._breakers[provider].available(self._now)
        return value


class _Allowances:
    """The providers with a monthly free allowance, asked of the ledger when the policy asks."""

    __slots__ = ("at", "costs")

    def __init__(self, costs: Costs, at: datetime) -> None:
        self.costs, self.at = costs, at

    def __contains__(self, provider: object) -> bool:
        return isinstance(provider, str) and self.costs.has_allowance(provider, self.at)

    def __iter__(self) -> Iterator[str]:  # pragma: no cover - the policy only asks `in`
        return iter(())


class _Reach:
    """The providers a user can be reached on, read when the policy first asks."""

    __slots__ = ("_facts", "_found", "_req")

    def __init__(self, facts: Facts, req: Pending) -> None:
        self._facts, self._req = facts, req
        self._found: frozenset[str] | None = None

    def _set(self) -> frozenset[str]:
        if self._found is None:
            self._found = self._facts.reachable(self._req)
        return self._found

    def __contains__(self, provider: object) -> bool:
        return provider in self._set()

    def __iter__(self) -> Iterator[str]:
        return iter(self._set())

    def __len__(self) -> int:
        return len(self._set())


class Facts:
    """Reads what the policy needs for a :class:`~eki_whatsapp.routing.Router`'s messages."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._order: tuple[tuple[str, ...], list[str]] = ((), [])  # (registered, policy order)

    def policy_providers(self) -> list[str]:
        """Registered providers the policy allows, in order of preference: those the policy names
        (``dual``: Meta, then Twilio), then — under ``dual`` — any other registered provider."""
        registered = tuple(self.router.providers)  # a bot may register more after start-up
        if registered != self._order[0]:
            settings = self.router.settings
            enabled: tuple[str, ...] = settings.enabled_providers
            names = [name for name in enabled if name in registered]
            if settings.whatsapp_provider == "dual":
                names += [name for name in registered if name not in enabled]
            self._order = (registered, names)
        return list(self._order[1])

    def last_inbound(
        self, provider: str, user: str, inbound: InboundMessage | None = None
    ) -> datetime | None:
        """When ``user`` last wrote to ``provider``'s business number (``None``: never)."""
        if provider not in self.router.providers:
            return None
        business: str | None = self.router.providers[provider].business_number or None
        if business is not None and not business.isdigit():
            business = None  # a sender that is not one number (a messaging service): any of its numbers
        last = self.router.store.last_inbound_at(provider, business, user)
        if inbound is not None and inbound.provider == provider and inbound.sender == user:
            last = inbound.timestamp if last is None else max(last, inbound.timestamp)
        return last

    def window_open(self, provider: str, user: str, inbound: InboundMessage | None = None) -> bool:
        """Whether ``user``'s 24-hour window is open on ``provider``'s business number now, for
        deciding (closed ``WHATSAPP_WINDOW_MARGIN_SECONDS`` early)."""
        last = self.last_inbound(provider, user, inbound)
        return last is not None and self.router.clock() - last < WINDOW - self.router.window_margin

    def _seen(self, provider: str, req: Pending) -> datetime | None:
        inbound = req.inbound
        if (
            inbound is not None
            and inbound.provider == provider
            and inbound.sender == req.user
            and req.at - inbound.timestamp < WINDOW - self.router.window_margin
        ):
            # The message being answered opens the window on its own: a later one in the store
            # would change no fact read from this (open for deciding, open for pricing, the user
            # reachable there), so a reply costs no read of the store.
            return inbound.timestamp
        if provider not in req.seen:
            req.seen[provider] = self.last_inbound(provider, req.user, inbound)
        return req.seen[provider]

    def _window(self, provider: str, req: Pending) -> bool:
        last = self._seen(provider, req)
        return last is not None and req.at - last < WINDOW - self.router.window_margin

    def priced_window(self, provider: str, req: Pending) -> bool:
        """Whether the provider will bill ``req`` as inside the window: its own 24 hours, no
        safety margin (the margin is for deciding what may be sent, not for pricing)."""
        last = self._seen(provider, req)
        return last is not None and req.at - last < WINDOW

    def reachable(self, req: Pending) -> frozenset[str]:
        """The registered providers ``req.user`` can be reached on: those whose number they
        wrote to, plus those they opted in on (:meth:`opt_in`). Empty: nothing is known."""
        found = {p for p in self.router.providers if self._seen(p, req) is not None}
        opted = self.router.store.get_value(_REACH, req.user)
        if isinstance(opted, list):
            found.update(p for p in opted if p in self.router.providers)
        return frozenset(found)

    def opt_in(self, user: str, *providers: str) -> None:
        """Record that ``user`` may be written to from these providers' numbers (an opt-in
        collected elsewhere, e.g. a sign-up form naming the number), besides those they wrote to."""
        current = self.router.store.get_value(_REACH, user)
        names = list(current) if isinstance(current, list) else []
        names += [p for p in providers if p not in names]
        self.router.store.set_value(_REACH, user, names)

    def situation(self, req: Pending, cause: ProviderError | None = None) -> Situation:
        """The facts of a decision for ``req``; windows, breakers and prices are read on demand."""
        router = self.router
        now = req.at = router.clock()
        costs = router.costs
        settings = router.settings
        windows: _Lazy[str, bool] = _Lazy(self._window, req)
        candidates = self.policy_providers()
        if req.tried:
            tried = {name for name, _ in req.tried}
            candidates = [p for p in candidates if p not in tried]
        return Situation(
            candidates=self.capable(candidates, req, cause),
            windows=windows,
            available=_Available(router.breakers, now),
            template=is_template(req.message),
            category=req.category,
            policy=settings.whatsapp_provider,
            fallback_category=router.fallback.category,
            has_fallback=router.fallback.configured,
            inbound=req.inbound.provider if req.inbound is not None else None,
            explicit=req.explicit,
            cause=type(cause).__name__ if cause is not None else None,
            prices=_Lazy(self._price, req),
            # Most price books grant no allowance: then there is nothing to ask per provider.
            allowances=_Allowances(costs, now) if costs.may_have_allowance else (),
            weights=settings.whatsapp_weights,
            draw=router.rng.random,
            reachable=_Reach(self, req),
            balance=settings.whatsapp_balance,
            other_number=settings.whatsapp_failover_other_number,
        )

    def capable(self, names: list[str], req: Pending, cause: ProviderError | None) -> list[str]:
        """The providers among ``names`` that can carry the message (each provider's
        ``supports``), decided before any request so a failover never picks one that would
        refuse it. None of them on a first choice: :class:`UnsupportedMessage` naming why."""
        able = [p for p in names if can_send(self.router.providers[p], req.message)]
        if able or not names or cause is not None or req.explicit is not None:
            return able
        reasons = []
        for name in names:
            explain = getattr(self.router.providers[name], "unsupported_reason", None)
            reason = explain(req.message) if explain is not None else None
            reasons.append(f"{name}: {reason or 'cannot send this kind of message'}")
        error = UnsupportedMessage(
            f"no configured provider can carry a {type(req.message).__name__} ({'; '.join(reasons)})",
            provider=names[0],
        )
        error.attempts = 0
        raise error

    def _price(self, key: tuple[str, str | None], req: Pending) -> Price:
        """The real price on a provider (priced with its own window), and whether and from
        which saving on its free allowance could waive it."""
        provider, category = key
        router = self.router
        costs = router.costs
        quote = costs.quote(
            provider,
            req.user,
            category,
            business=router.providers[provider].business_number,
            in_window=self.priced_window(provider, req),
            at=req.at,
            allowance=False,
        )
        bar = None
        if costs.may_have_allowance and quote.amount:
            bar = costs.allowance_bar(provider, req.user, category, req.at)
        return Price(quote.amount, free_allowance=bar is not None, allowance_bar=bar)
