"""Monthly free allowances: how many free messages a provider gives, what is left of them this
month (a counter in the Store, so every process sharing it counts the same), taking a slot with
one atomic step, giving it back when the message fails, and the bar the router applies before
it moves a message to a provider *because* a slot would waive its price."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal

from ..store.base import Store
from .prices import CATEGORIES, ZERO, Allowance, PriceBook

__all__ = ["Allowances"]

#: The Store namespace of the ledger's counters.
KV = "eki.costs"


class Allowances:
    """The free allowances of a :class:`~eki_whatsapp.costs.Costs`.

    Args:
        store: where the monthly counters live.
        prices: the price tables (their ``free_allowance``).
        configured: messages per month per provider (``{"meta": 1000}``); replaces the price
            tables' allowance for those providers.
        categories: categories an allowance covers (empty: those the price table names, or every
            billable one).
    """

    def __init__(
        self, store: Store, prices: PriceBook, configured: Mapping[str, int], categories: Iterable[str] = ()
    ) -> None:
        self.store = store
        self.prices = prices
        self.configured = {k: int(v) for k, v in configured.items() if int(v) > 0}
        self.categories = frozenset(c.lower() for c in categories)

    def of(self, provider: str, at: datetime | date) -> Allowance | None:
        """The monthly free allowance of ``provider`` on that day: the configured one (e.g.
        ``WHATSAPP_META_FREE_ALLOWANCE``), else the price table's (``None``: none)."""
        given = self.configured.get(provider)
        if given is not None:
            return Allowance(given, self.categories)
        found = self.prices.allowance(provider, at)
        if found is None or not self.categories:
            return found
        return Allowance(found.per_month, self.categories)

    @property
    def may_exist(self) -> bool:
        """Whether any provider may have a free allowance (configured, or in a price table)."""
        return bool(self.configured) or self.prices.has_allowances

    def left(self, provider: str, allowance: Allowance | None, month: str) -> int:
        """Free messages ``provider`` has left of ``allowance`` in ``month`` (``"2026-11"``)."""
        if allowance is None:
            return 0
        used = int(self.store.get_value(KV, f"allowance:{provider}:{month}") or 0)
        return max(0, allowance.per_month - used)

    def covers(self, provider: str, category: str | None, at: datetime) -> bool:
        """The provider's free allowance covers a message of ``category`` sent at ``at`` (and has
        a slot left)."""
        if not self.may_exist:
            return False
        allowance = self.of(provider, at)
        return (
            allowance is not None
            and allowance.covers(category)
            and self.left(provider, allowance, at.strftime("%Y-%m")) > 0
        )

    def take(self, provider: str, at: datetime) -> str | None:
        """Count one free message of ``provider``'s allowance for ``at``'s month — one atomic
        step in the Store, so processes sharing it never count one too many; the counter's key,
        or ``None`` when the allowance is used up."""
        allowance = self.of(provider, at)
        key = f"allowance:{provider}:{at.strftime('%Y-%m')}"
        if allowance is None or self.store.increment(KV, key, limit=allowance.per_month) is None:
            return None
        return key

    def release(self, key: str) -> None:
        """Give back a slot :meth:`take` counted under ``key``."""
        self.store.increment(KV, key, -1)

    def remember(self, provider: str, message_id: str, key: str) -> None:
        """Remember which counter a message's slot came from, so a failure reported later gives
        it back (:meth:`give_back`)."""
        self.store.set_value(KV, f"took:{provider}:{message_id}", key)

    def give_back(self, provider: str, message_id: str) -> bool:
        """Return the free slot a message took, if it took one (its send failed); ``True`` when
        a slot was given back. Safe to call twice: the slot goes back once."""
        key = f"took:{provider}:{message_id}"
        taken = self.store.get_value(KV, key)
        if not taken or not self.store.compare_and_set(KV, key, taken, None):
            return False
        self.release(str(taken))
        return True

    def bar(
        self, provider: str, category: str | None, at: datetime, market: Callable[[], str | None]
    ) -> Decimal | None:
        """The least a message must save for the router to send it to ``provider`` *because* its
        free allowance would waive the price, or ``None`` when the allowance does not cover it
        (none, used up, or another category).

        A provider applies its allowance to the first messages it gets (first come), so the
        router decides where slots go by deciding which messages the allowance may attract. It
        paces them through the month: while more slots are left than an even pace would keep
        (``per_month`` x the fraction of the month still to come) they would expire unused, so
        any saving may take one (bar 0); behind that pace only messages as dear as the dearest
        the allowance covers in the user's ``market()`` (the bar is that rate) are moved to it. So
        a cheap day-1 reminder that Twilio's open window carries for 0.005 stays there, and the
        slots are left for the messages where they save most.
        """
        allowance = self.of(provider, at)
        if allowance is None or not allowance.covers(category):
            return None
        left = self.left(provider, allowance, at.strftime("%Y-%m"))
        if left <= 0:
            return None
        start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        still_to_come = (end - at) / (end - start)
        if left > allowance.per_month * still_to_come:
            return ZERO
        dearest = ZERO
        where = market()
        for cat in allowance.categories or CATEGORIES:
            quote = self.prices.quote(provider, cat, where, at=at, in_window=False)
            if quote.amount is not None and quote.amount > dearest:
                dearest = quote.amount
        return dearest
