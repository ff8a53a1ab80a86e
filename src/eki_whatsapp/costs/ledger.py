"""The cost ledger (``bot.costs``): every send and every priced status, in the Store.

Every successful send is priced when sent (``source="send"``, an estimate) and again when a
status webhook brings the provider's own pricing data (``source="status"``, first value seen per
message); a failure reported later is kept apart (``source="failure"``) and not charged. A send
that timed out after the request left may have been delivered: it is priced too
(``note="timed-out"``). Inbound messages a provider charges for (Twilio's fee) are entries of
their own (``source="inbound"``).

Monthly free allowances — from the price table of the day, or configured per provider (its
package's ``prices.free_allowance``, e.g. ``WHATSAPP_META_FREE_ALLOWANCE``) — are counted in the
Store, so they survive restarts. A message the allowance covers keeps its real price in its
entry; the allowance is a discount entry beside it (``source="allowance"``), so the report shows
what was charged and what was waived. A message that fails after taking a free slot gives the
slot back.

A cost that cannot be told (category or market unknown, no table for the date) is ``None`` —
"unknown cost" — never a silent zero.

Example::

    report = bot.costs.report("2026-11")
    print(report)                    # a table
    report.total                     # Decimal of the known costs
    report.unknown                   # how many messages could not be priced
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from typing_extensions import Unpack

from ..store.base import LedgerEntry, Store
from .allowances import Allowances
from .conversations import Conversations
from .prices import ZERO, Allowance, PriceBook, Quote
from .report import CostReport, build_report
from .statuses import status_entry

if TYPE_CHECKING:
    from ..events import InboundMessage, StatusUpdate
    from ..settings import Settings

__all__ = ["Costs", "Priced"]


class Priced(TypedDict, total=False):
    """How a message is priced besides its provider, user and category.

    Attributes:
        business: the business number it goes from (CBP conversations are per number).
        in_window: the user's customer service window is open on that provider's number.
        at: when (default: now).
    """

    business: str | None
    in_window: bool
    at: datetime | None


_UNSET: Any = object()


def _entry(
    quote: Quote, message_id: str, at: datetime, user: str, source: str, note: str | None
) -> LedgerEntry:
    """The ledger entry of one message priced by ``quote``."""
    q = quote
    return LedgerEntry(
        q.provider, message_id, q.category, at, user, q.market, q.pricing_model, q.billable, q.amount,
        q.currency, source, note,
    )  # fmt: skip


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Costs:
    """The cost ledger of a bot (``bot.costs``), on the bot's Store.

    Args:
        store: where ledger entries, allowance counters and (CBP) open conversations live.
        prices: the price tables (default: the shipped ones).
        free_allowance: messages per month free of charge, per provider (``{"meta": 1000}``);
            replaces the allowance of the price tables for those providers.
        allowance_categories: categories an allowance covers (empty: those the price table
            names, or every billable one).
        default_market: market for users whose country cannot be told from the number.
        clock: returns "now" (aware UTC); injectable for tests and simulations.
    """

    def __init__(
        self,
        store: Store,
        prices: PriceBook | None = None,
        *,
        free_allowance: Mapping[str, int] | None = None,
        allowance_categories: Iterable[str] = (),
        default_market: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.prices = prices if prices is not None else PriceBook.default()
        #: The monthly free allowances and their counters in the store.
        self.allowances = Allowances(store, self.prices, free_allowance or {}, allowance_categories)
        #: Open conversations under conversation-based pricing.
        self.conversations = Conversations(store)
        self.default_market = default_market
        self.clock = clock
        self._lock = threading.Lock()
        self._markets: dict[str, str | None] = {}  # user → market, bounded cache

    @classmethod
    def from_settings(
        cls,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        providers: Mapping[str, Any] | None = None,
    ) -> Costs:
        """A ledger configured by ``WHATSAPP_PRICE_TABLE``, ``WHATSAPP_PRICE_RULES``, the
        providers' free allowances (``WHATSAPP_META_FREE_ALLOWANCE``, or a registered provider's
        ``free_allowance``), ``WHATSAPP_FREE_ALLOWANCE_CATEGORIES`` and ``WHATSAPP_DEFAULT_MARKET``."""
        from ..providers import free_allowances

        rules = settings.whatsapp_price_rules
        if settings.whatsapp_price_table:
            prices = PriceBook.load(settings.whatsapp_price_table, rules=rules)
        else:
            prices = PriceBook.default(rules=rules)
        return cls(
            store,
            prices,
            free_allowance=free_allowances(settings, providers),
            allowance_categories=settings.whatsapp_free_allowance_categories,
            default_market=settings.whatsapp_default_market,
            clock=clock,
        )

    # --- quoting ---------------------------------------------------------------------------
    def market_of(self, user: str) -> str | None:
        """The pricing market of a user (cached: every priced status webhook asks)."""
        market = self._markets.get(user, _UNSET)
        if market is _UNSET:
            market = self.prices.market_of(user, self.default_market)
            if len(self._markets) >= 10_000:  # bounded
                self._markets.clear()
            self._markets[user] = market
        return market  # type: ignore[no-any-return]

    def allowance(self, provider: str, at: datetime | date) -> Allowance | None:
        """The monthly free allowance of ``provider`` on that day (see :meth:`Allowances.of`)."""
        return self.allowances.of(provider, at)

    @property
    def may_have_allowance(self) -> bool:
        """Whether any provider may have a free allowance (configured, or in a price table)."""
        return self.allowances.may_exist

    def has_allowance(self, provider: str, at: datetime | date) -> bool:
        """Whether ``provider`` has a monthly free allowance at all on that day."""
        return self.allowances.of(provider, at) is not None

    def allowance_left(self, provider: str, month: str | None = None) -> int:
        """Free messages ``provider`` has left in ``month`` (``"2026-11"``, default: this
        month; 0 when it has no allowance)."""
        day = date.fromisoformat(f"{month}-01") if month else self.clock()
        return self.allowances.left(provider, self.allowances.of(provider, day), f"{day:%Y-%m}")

    def quote(
        self,
        provider: str,
        user: str,
        category: str | None,
        *,
        allowance: bool = True,
        **priced: Unpack[Priced],
    ) -> Quote:
        """What sending one message now would cost, counting open CBP conversations and (unless
        ``allowance=False``) the free allowance (read-only: nothing is recorded)."""
        business, in_window = priced.get("business"), priced.get("in_window", False)
        at = priced.get("at") or self.clock()
        market = self.market_of(user)
        table = self.prices.table(provider, at)
        conv_open = False
        if table is not None and category is not None:
            model_table = self.prices.table(table.includes, at) if table.includes else table
            if model_table is not None and model_table.model == "CBP":
                conv_open = self.conversations.is_open(
                    provider, business, user, category, at, model_table.conversation_hours
                )
        quote = self.prices.quote(
            provider, category, market, at=at, in_window=in_window, conversation_open=conv_open
        )
        if allowance and self._covers(quote, category, at):
            return Quote(
                provider,
                category,
                market,
                ZERO,
                quote.currency,
                quote.pricing_model,
                billable=False,
                note="free-allowance",
            )
        return quote

    def _covers(self, quote: Quote, category: str | None, at: datetime) -> bool:
        """Whether a free slot of the quoted provider's allowance would waive a priced message."""
        amount = quote.amount
        return amount is not None and amount > 0 and self.allowances.covers(quote.provider, category, at)

    def allowance_bar(self, provider: str, user: str, category: str | None, at: datetime) -> Decimal | None:
        """The least a message must save for the router to send it to ``provider`` *because* its
        free allowance would waive the price (see :meth:`Allowances.bar`)."""
        return self.allowances.bar(provider, category, at, lambda: self.market_of(user))

    # --- recording -------------------------------------------------------------------------
    def record_send(
        self,
        provider: str,
        message_ids: Iterable[str],
        user: str,
        category: str | None,
        *,
        allowance: bool = True,
        note: str | None = None,
        **priced: Unpack[Priced],
    ) -> list[LedgerEntry]:
        """Price and record a successful send (one entry per message id).

        ``allowance``: use a free slot of the provider's allowance when one covers the message, as
        the provider does (first come): the router's part is to send a message to the provider
        with the allowance only where a slot saves enough (:meth:`allowance_bar`). ``False``:
        never (e.g. a send that timed out). The entry keeps the real price; a slot taken adds a
        discount entry (``source="allowance"``).
        ``note``: recorded instead of the quote's note (e.g. ``timed-out``).
        """
        business = priced.get("business")
        at = priced.get("at") or self.clock()
        entries = []
        with self._lock:
            for message_id in message_ids:
                in_window = priced.get("in_window", False)
                quote = self.quote(
                    provider, user, category, business=business, in_window=in_window, at=at, allowance=False
                )
                taken = None
                if allowance and self._covers(quote, category, at):
                    taken = self.allowances.take(provider, at)  # None: another process took the last one
                entry = _entry(quote, message_id, at, user, "send", note or quote.note)
                if not self.store.add_ledger(entry):
                    if taken is not None:  # recorded before: give the free message back
                        self.allowances.release(taken)
                    continue
                entries.append(entry)
                if taken is not None:
                    discount = replace(entry, billable=False, source="allowance", note="free-allowance")
                    self.store.add_ledger(discount)
                    self.allowances.remember(provider, message_id, taken)
                opens = quote.billable or taken is not None
                if quote.pricing_model == "CBP" and opens and category is not None:
                    # This message opened a conversation: later ones of the category are free.
                    self.conversations.open(provider, business, user, category, at)
        return entries

    def record_timeout(
        self,
        provider: str,
        user: str,
        category: str | None,
        **priced: Unpack[Priced],
    ) -> LedgerEntry | None:
        """Record a send whose request left but whose answer never came (a timeout): the
        provider may have delivered and charged it, so it is priced (``note="timed-out"``) under
        an id of its own (the provider's id is unknown). Never uses the free allowance."""
        entries = self.record_send(
            provider,
            [f"timeout:{uuid.uuid4().hex}"],
            user,
            category,
            allowance=False,
            note="timed-out",
            **priced,
        )
        return entries[0] if entries else None

    def record_inbound(self, message: InboundMessage) -> LedgerEntry | None:
        """Record the fee a provider charges for an inbound message (Twilio: USD 0.005 each);
        nothing for a provider that charges none."""
        fee = self.prices.inbound_fee(message.provider, message.timestamp)
        if fee <= 0:
            return None
        entry = LedgerEntry(
            provider=message.provider,
            message_id=message.id,
            category="inbound",
            at=message.timestamp,
            user=message.sender,
            market=self.market_of(message.sender),
            billable=True,
            amount=fee,
            currency=self.prices.currency,
            source="inbound",
            note="inbound fee",
        )
        return entry if self.store.add_ledger(entry) else None

    def give_back(self, provider: str, message_id: str) -> bool:
        """Return the free slot a message took, if it took one (its send failed); ``True`` when
        a slot was given back. Safe to call twice: the slot goes back once."""
        return self.allowances.give_back(provider, message_id)

    def record_status(
        self, status: StatusUpdate, *, category: str | None = None, sent_at: datetime | None = None
    ) -> LedgerEntry | None:
        """Record the provider's own pricing of a message (first value seen wins), or that a
        message failed (not charged). Statuses without pricing or failure add nothing.

        A failure is kept apart (``source="failure"``), so a message priced by an earlier status
        and failed later is still counted as failed and not charged.

        ``category`` and ``sent_at`` come from the message's log row when known; the entry is
        dated ``sent_at`` (so it lands in the same month as the send) or else the status time.
        """
        pricing = status.pricing
        if pricing is None and not status.failed:
            return None
        at = sent_at or status.timestamp
        user = status.recipient or status.recipient_user_id or ""
        market = self.market_of(user)
        if status.failed:
            self.give_back(status.provider, status.message_id)
        entry = status_entry(self.prices, status, category, at, user or None, market)
        if entry is None:
            return None
        return entry if self.store.add_ledger(entry) else None

    # --- report ----------------------------------------------------------------------------
    def report(self, month: str | None = None) -> CostReport:
        """Counts and estimated cost per provider and category for ``month`` (``"2026-11"``,
        default: this month). Provider pricing from status webhooks wins over the estimate made
        when sending; the allowance is a discount beside the price; inbound fees are a line of
        their own."""
        month = month or self.clock().strftime("%Y-%m")
        day = date.fromisoformat(f"{month}-01")
        return build_report(
            self.store.ledger(month=month),
            month,
            self.prices.currency,
            fee_of=lambda entry: self.prices.own_fee(entry.provider, entry.at, entry.amount),
            rates_of=lambda provider: self.prices.rates_of(provider, day),
        )
