"""What messages cost: dated price tables, a ledger fed by sends and status webhooks, a report.

Three pieces:

* :class:`PriceBook` — the price tables of every provider, each dated (``effective``), per
  market and category, in either pricing model of Meta (docs/wire.md §6): ``PMP`` (per delivered
  message, from 2025-07-01) or ``CBP`` (per 24-hour conversation, before). A Twilio table adds
  Twilio's own per-message fee on top of Meta's rates, which Twilio passes through. The shipped
  default (``eki_whatsapp/prices.json``) notes its date and sources; replace it with
  ``WHATSAPP_PRICE_TABLE=/path/prices.json``.
* :class:`Costs` — the ledger (``bot.costs``): every successful send is priced when sent
  (``source="send"``, an estimate) and again when a status webhook brings Meta's own pricing
  data (``source="status"``, first value seen per message). Monthly free allowances are
  counted in the Store, so they survive restarts.
* :class:`CostReport` — ``bot.costs.report("2026-11")``: counts and estimated cost per provider
  and category.

A cost that cannot be told (category or market unknown, no table for the date) is ``None`` —
"unknown cost" — never a silent zero.

Example::

    report = bot.costs.report("2026-11")
    print(report)                    # a table
    report.total                     # Decimal of the known costs
    report.unknown                   # how many messages could not be priced
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .store.base import LedgerEntry, Store

if TYPE_CHECKING:
    from .events import StatusUpdate
    from .settings import Settings

__all__ = [
    "CATEGORIES",
    "CostLine",
    "CostReport",
    "Costs",
    "PriceBook",
    "PriceTable",
    "Quote",
    "country_of",
]

#: The four categories of Meta's pricing (providers may report others, e.g. ``marketing_lite``).
CATEGORIES = ("marketing", "utility", "authentication", "service")

ZERO = Decimal("0")
_KV = "eki.costs"

# Country calling code → ISO 3166 country, longest prefix first when matching.
_CALLING_CODES: dict[str, str] = {
    "1": "US",
    "7": "RU",
    "20": "EG",
    "27": "ZA",
    "30": "GR",
    "31": "NL",
    "32": "BE",
    "33": "FR",
    "34": "ES",
    "39": "IT",
    "40": "RO",
    "41": "CH",
    "43": "AT",
    "44": "GB",
    "45": "DK",
    "46": "SE",
    "47": "NO",
    "48": "PL",
    "49": "DE",
    "51": "PE",
    "52": "MX",
    "54": "AR",
    "55": "BR",
    "56": "CL",
    "57": "CO",
    "58": "VE",
    "60": "MY",
    "61": "AU",
    "62": "ID",
    "63": "PH",
    "64": "NZ",
    "65": "SG",
    "66": "TH",
    "81": "JP",
    "82": "KR",
    "84": "VN",
    "86": "CN",
    "90": "TR",
    "91": "IN",
    "92": "PK",
    "212": "MA",
    "233": "GH",
    "234": "NG",
    "254": "KE",
    "351": "PT",
    "353": "IE",
    "358": "FI",
    "380": "UA",
    "502": "GT",
    "506": "CR",
    "507": "PA",
    "591": "BO",
    "593": "EC",
    "595": "PY",
    "598": "UY",
    "966": "SA",
    "971": "AE",
    "972": "IL",
}


def country_of(user: str | None) -> str | None:
    """ISO country of a user key: from the calling code of phone digits, or the ``CC.`` prefix
    of a business-scoped user id (``US.1349...``). ``None`` when it cannot be told."""
    if not user:
        return None
    if user.isdigit():
        for length in (3, 2, 1):
            country = _CALLING_CODES.get(user[:length])
            if country is not None:
                return country
        return None
    prefix, dot, _ = user.partition(".")
    if dot and len(prefix) == 2 and prefix.isalpha():
        return prefix.upper()
    return None


def _decimal(value: Any, where: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ConfigError(f"price table: {where} is {value!r}, not a number") from exc
    if result < 0:
        raise ConfigError(f"price table: {where} is negative")
    return result


@dataclass(frozen=True, slots=True)
class PriceTable:
    """The prices of one provider from one date on.

    Attributes:
        provider: ``meta`` or ``twilio``.
        effective: first day the table applies (until the next table of that provider).
        model: ``PMP`` (per message), ``CBP`` (per 24-hour conversation) or ``fee`` (only a
            per-message fee, plus the rates of ``includes``).
        rates: ``{market: {category: amount}}``.
        fee_per_message: charged on every outbound message (Twilio's fee).
        includes: another provider whose rates are charged too (Twilio passes Meta's through).
        free_in_window: categories free inside the customer service window (PMP: service, utility).
        conversation_hours: length of a CBP conversation.
    """

    provider: str
    effective: date
    model: str
    currency: str = "USD"
    rates: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    fee_per_message: Decimal = ZERO
    includes: str | None = None
    free_in_window: frozenset[str] = frozenset()
    conversation_hours: int = 24
    source: str = ""
    note: str = ""

    @classmethod
    def from_dict(cls, provider: str, data: Mapping[str, Any], *, currency: str = "USD") -> PriceTable:
        """Build from the JSON shape of ``prices.json`` (amounts as strings or numbers)."""
        try:
            effective = date.fromisoformat(str(data["effective"]))
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"price table for {provider}: 'effective' must be a date like '2025-07-01'"
            ) from exc
        model = str(data.get("model", "PMP")).upper()
        if model not in ("PMP", "CBP", "FEE"):
            raise ConfigError(f"price table for {provider} {effective}: model must be PMP, CBP or fee")
        rates: dict[str, dict[str, Decimal]] = {}
        for market, by_category in dict(data.get("rates") or {}).items():
            rates[str(market)] = {
                str(cat).lower(): _decimal(amount, f"{provider} {effective} {market}.{cat}")
                for cat, amount in dict(by_category).items()
            }
        return cls(
            provider=provider,
            effective=effective,
            model="fee" if model == "FEE" else model,
            currency=str(data.get("currency", currency)),
            rates=rates,
            fee_per_message=_decimal(data.get("fee_per_message", 0), f"{provider} {effective} fee"),
            includes=data.get("includes"),
            free_in_window=frozenset(str(c).lower() for c in data.get("free_in_window", ())),
            conversation_hours=int(data.get("conversation_hours", 24)),
            source=str(data.get("source", "")),
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of one message. ``amount`` is ``None`` when unknown (``note`` says why)."""

    provider: str
    category: str | None
    market: str | None
    amount: Decimal | None
    currency: str = "USD"
    pricing_model: str | None = None
    #: Whether the message is charged at all (``None`` when unknown).
    billable: bool | None = None
    note: str | None = None

    @property
    def known(self) -> bool:
        return self.amount is not None


class PriceBook:
    """Every provider's dated price tables plus the country → market map.

    Example::

        book = PriceBook.default()                       # the shipped prices.json
        book = PriceBook.load("my-prices.json")          # your negotiated rates
        book.quote("twilio", "marketing", "north_america", at=now, in_window=False).amount
    """

    def __init__(
        self,
        tables: Iterable[PriceTable],
        *,
        markets: Mapping[str, str] | None = None,
        currency: str = "USD",
        about: str = "",
    ) -> None:
        self.currency = currency
        self.about = about
        self.markets = {k.upper(): v for k, v in (markets or {}).items()}
        self.tables: dict[str, list[PriceTable]] = {}
        for table in tables:
            self.tables.setdefault(table.provider, []).append(table)
        for items in self.tables.values():
            items.sort(key=lambda t: t.effective)
        self._quotes: dict[tuple[Any, ...], Quote] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceBook:
        """Build from the JSON shape of ``prices.json``."""
        currency = str(data.get("currency", "USD"))
        tables = [
            PriceTable.from_dict(provider, item, currency=currency)
            for provider in ("meta", "twilio")
            for item in data.get(provider, ())
        ]
        return cls(
            tables,
            markets=data.get("markets") or {},
            currency=currency,
            about=str(data.get("about", "")),
        )

    @classmethod
    def default(cls) -> PriceBook:
        """The tables shipped with the library (``eki_whatsapp/prices.json``)."""
        text = resources.files("eki_whatsapp").joinpath("prices.json").read_text("utf-8")
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> PriceBook:
        """Tables from a JSON file in the shape of ``prices.json`` (``WHATSAPP_PRICE_TABLE``)."""
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"WHATSAPP_PRICE_TABLE: cannot read {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"WHATSAPP_PRICE_TABLE: {path} is not valid JSON ({exc})") from exc
        return cls.from_dict(data)

    def table(self, provider: str, at: datetime | date) -> PriceTable | None:
        """The table of ``provider`` in force on that day (``None`` before the first)."""
        day = at.date() if isinstance(at, datetime) else at
        found = None
        for table in self.tables.get(provider, ()):
            if table.effective <= day:
                found = table
        return found

    def market_of(self, user: str | None, default: str | None = None) -> str | None:
        """The pricing market of a user key (``None`` when neither number nor default tell)."""
        country = country_of(user)
        if country is not None and country in self.markets:
            return self.markets[country]
        return default

    def quote(
        self,
        provider: str,
        category: str | None,
        market: str | None,
        *,
        at: datetime,
        in_window: bool,
        conversation_open: bool = False,
    ) -> Quote:
        """Price of one message of ``category`` to ``market`` sent through ``provider`` at ``at``.

        ``in_window``: the user's customer service window is open on that provider's number;
        ``conversation_open``: (CBP) a conversation of that category is already open.
        """
        key = (provider, category, market, at.date(), in_window, conversation_open)
        cached = self._quotes.get(key)
        if cached is not None:
            return cached
        quote = self._quote(
            provider, category, market, at=at, in_window=in_window, conversation_open=conversation_open
        )
        if len(self._quotes) >= 4096:  # bounded: tables are immutable, keys are few in practice
            self._quotes.clear()
        self._quotes[key] = quote
        return quote

    def _quote(
        self,
        provider: str,
        category: str | None,
        market: str | None,
        *,
        at: datetime,
        in_window: bool,
        conversation_open: bool,
    ) -> Quote:
        table = self.table(provider, at)
        if table is None:
            return Quote(
                provider,
                category,
                market,
                None,
                self.currency,
                note=f"no {provider} price table for {at.date()}",
            )
        fee = table.fee_per_message
        base: Quote | None = None
        if table.includes:
            base = self.quote(
                table.includes,
                category,
                market,
                at=at,
                in_window=in_window,
                conversation_open=conversation_open,
            )
        if table.rates:
            base = self._own_rate(table, category, market, in_window, conversation_open)
        if base is None:
            return Quote(provider, category, market, fee, table.currency, table.model, billable=fee > 0)
        if base.amount is None:
            return Quote(provider, category, market, None, table.currency, base.pricing_model, note=base.note)
        amount = base.amount + fee
        return Quote(
            provider,
            category,
            market,
            amount,
            table.currency,
            base.pricing_model,
            billable=amount > 0,
            note=base.note,
        )

    @staticmethod
    def _own_rate(
        table: PriceTable, category: str | None, market: str | None, in_window: bool, conversation_open: bool
    ) -> Quote:
        p, model, cur = table.provider, table.model, table.currency
        if category is None:
            return Quote(p, None, market, None, cur, model, note="unknown category")
        if market is None:
            return Quote(p, category, None, None, cur, model, note="unknown market")
        rates = table.rates.get(market)
        if rates is None:
            return Quote(p, category, market, None, cur, model, note=f"no {p} rate for market {market!r}")
        rate = rates.get(category)
        if rate is None:
            return Quote(p, category, market, None, cur, model, note=f"no {p} rate for category {category!r}")
        if model == "CBP" and conversation_open:
            return Quote(p, category, market, ZERO, cur, model, billable=False, note="in-conversation")
        if model == "PMP" and in_window and category in table.free_in_window:
            return Quote(p, category, market, ZERO, cur, model, billable=False, note="free-in-window")
        return Quote(p, category, market, rate, cur, model, billable=rate > 0)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CostLine:
    """One provider and category of a month.

    Attributes:
        messages: messages sent (failed ones excluded, see ``failed``).
        billable: messages charged (amount > 0).
        free: messages made free by the monthly free allowance.
        unknown: messages whose cost could not be told.
        known_amount: sum of the costs that are known.
        failed: messages that failed after being accepted (not charged).
    """

    provider: str
    category: str
    messages: int = 0
    billable: int = 0
    free: int = 0
    unknown: int = 0
    known_amount: Decimal = ZERO
    failed: int = 0

    @property
    def amount(self) -> Decimal | None:
        """The cost, or ``None`` ("unknown cost") when some message could not be priced."""
        return None if self.unknown else self.known_amount


@dataclass(frozen=True, slots=True)
class CostReport:
    """Counts and estimated costs of one month, per provider and category."""

    month: str
    currency: str
    lines: tuple[CostLine, ...]

    @property
    def total(self) -> Decimal:
        """Sum of the known costs (see :attr:`unknown` for what is missing)."""
        return sum((line.known_amount for line in self.lines), ZERO)

    @property
    def unknown(self) -> int:
        """Messages whose cost is unknown."""
        return sum(line.unknown for line in self.lines)

    @property
    def messages(self) -> int:
        return sum(line.messages for line in self.lines)

    def by_provider(self) -> dict[str, Decimal]:
        """Known cost per provider."""
        out: dict[str, Decimal] = {}
        for line in self.lines:
            out[line.provider] = out.get(line.provider, ZERO) + line.known_amount
        return out

    def line(self, provider: str, category: str) -> CostLine:
        """The line of ``provider``/``category`` (an empty one if there was no traffic)."""
        for item in self.lines:
            if item.provider == provider and item.category == category:
                return item
        return CostLine(provider, category)

    def __str__(self) -> str:
        rows = [f"WhatsApp costs {self.month} ({self.currency}, estimated)"]
        rows.append(
            f"{'provider':<8} {'category':<16} {'sent':>7} {'billable':>8} {'free':>6} "
            f"{'failed':>6} {'cost':>12}"
        )
        for ln in self.lines:
            cost = f"{ln.known_amount:.4f}" if not ln.unknown else f"{ln.known_amount:.4f}+{ln.unknown}?"
            rows.append(
                f"{ln.provider:<8} {ln.category:<16} {ln.messages:>7} {ln.billable:>8} "
                f"{ln.free:>6} {ln.failed:>6} {cost:>12}"
            )
        total = f"{self.total:.4f}"
        if self.unknown:
            total += f" + unknown cost of {self.unknown} message(s)"
        rows.append(f"total {total}")
        return "\n".join(rows)


# --------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------
_UNSET: Any = object()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Costs:
    """The cost ledger of a bot (``bot.costs``), on the bot's Store.

    Args:
        store: where ledger entries, allowance counters and (CBP) open conversations live.
        prices: the price tables (default: the shipped ones).
        free_allowance: messages per month free of charge, per provider (``{"meta": 1000}``).
        allowance_categories: categories the allowance covers (empty: every billable one).
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
        self.free_allowance = {k: int(v) for k, v in (free_allowance or {}).items() if int(v) > 0}
        self.allowance_categories = frozenset(c.lower() for c in allowance_categories)
        self.default_market = default_market
        self.clock = clock
        self._lock = threading.Lock()
        self._markets: dict[str, str | None] = {}  # user → market, bounded cache

    @classmethod
    def from_settings(
        cls, store: Store, settings: Settings, *, clock: Callable[[], datetime] = _utcnow
    ) -> Costs:
        """A ledger configured by ``WHATSAPP_PRICE_TABLE``, ``WHATSAPP_META_FREE_ALLOWANCE``,
        ``WHATSAPP_FREE_ALLOWANCE_CATEGORIES`` and ``WHATSAPP_DEFAULT_MARKET``."""
        prices = PriceBook.load(settings.whatsapp_price_table) if settings.whatsapp_price_table else None
        return cls(
            store,
            prices,
            free_allowance={"meta": settings.whatsapp_meta_free_allowance},
            allowance_categories=settings.whatsapp_free_allowance_categories,
            default_market=settings.whatsapp_default_market,
            clock=clock,
        )

    # --- quoting ---------------------------------------------------------------------------
    def market_of(self, user: str) -> str | None:
        """The pricing market of a user."""
        return self.prices.market_of(user, self.default_market)

    def allowance_left(self, provider: str, month: str | None = None) -> int:
        """Free messages ``provider`` has left this month (0 when it has no allowance)."""
        limit = self.free_allowance.get(provider, 0)
        if not limit:
            return 0
        month = month or self.clock().strftime("%Y-%m")
        used = int(self.store.get_value(_KV, f"allowance:{provider}:{month}") or 0)
        return max(0, limit - used)

    def quote(
        self,
        provider: str,
        user: str,
        category: str | None,
        *,
        business: str | None = None,
        in_window: bool = False,
        at: datetime | None = None,
    ) -> Quote:
        """What sending one message now would cost, counting open CBP conversations and the
        free allowance (read-only: nothing is recorded)."""
        at = at or self.clock()
        market = self.market_of(user)
        table = self.prices.table(provider, at)
        conv_open = False
        if table is not None and category is not None:
            model_table = self.prices.table(table.includes, at) if table.includes else table
            if model_table is not None and model_table.model == "CBP":
                conv_open = self._conversation_open(
                    provider, business, user, category, at, model_table.conversation_hours
                )
        quote = self.prices.quote(
            provider, category, market, at=at, in_window=in_window, conversation_open=conv_open
        )
        if (
            quote.amount is not None
            and quote.amount > 0
            and category is not None
            and (not self.allowance_categories or category in self.allowance_categories)
            and self.allowance_left(provider, at.strftime("%Y-%m")) > 0
        ):
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

    # --- recording -------------------------------------------------------------------------
    def record_send(
        self,
        provider: str,
        message_ids: Iterable[str],
        user: str,
        category: str | None,
        *,
        business: str | None = None,
        in_window: bool = False,
        at: datetime | None = None,
    ) -> list[LedgerEntry]:
        """Price and record a successful send (one entry per message id)."""
        at = at or self.clock()
        entries = []
        with self._lock:
            for message_id in message_ids:
                quote = self.quote(provider, user, category, business=business, in_window=in_window, at=at)
                entry = LedgerEntry(
                    provider=provider,
                    message_id=message_id,
                    category=category,
                    at=at,
                    user=user,
                    market=quote.market,
                    pricing_model=quote.pricing_model,
                    billable=quote.billable,
                    amount=quote.amount,
                    currency=quote.currency,
                    source="send",
                    note=quote.note,
                )
                if not self.store.add_ledger(entry):
                    continue
                entries.append(entry)
                if quote.note == "free-allowance":
                    key = f"allowance:{provider}:{at.strftime('%Y-%m')}"
                    self.store.set_value(_KV, key, int(self.store.get_value(_KV, key) or 0) + 1)
                opens = quote.billable or quote.note == "free-allowance"
                if quote.pricing_model == "CBP" and opens and category is not None:
                    # This message opened a conversation: later ones of the category are free.
                    self.store.set_value(
                        _KV, self._conv_key(provider, business, user, category), at.isoformat()
                    )
        return entries

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
        market = self._markets.get(user, _UNSET)
        if market is _UNSET:
            market = self.market_of(user)
            if len(self._markets) >= 10_000:
                self._markets.clear()
            self._markets[user] = market
        if status.failed:
            entry = LedgerEntry(
                provider=status.provider,
                message_id=status.message_id,
                category=category,
                at=at,
                user=user or None,
                market=market,
                billable=False,
                amount=ZERO,
                source="failure",
                note="failed",
            )
        elif pricing is not None:
            cat = (pricing.category or category or "").lower() or None
            model = (pricing.pricing_model or "").upper() or None
            free = (pricing.type or "").startswith("free") or pricing.billable is False
            if free:
                amount: Decimal | None = ZERO
                note: str | None = pricing.type or "not billable"
                currency = self.prices.currency
            else:
                quote = self.prices.quote(status.provider, cat, market, at=at, in_window=False)
                amount, note, currency = quote.amount, quote.note, quote.currency
            # positional, in field order: this runs for every priced status webhook
            entry = LedgerEntry(
                status.provider,
                status.message_id,
                cat,
                at,
                user or None,
                market,
                model,
                None if amount is None else amount > 0,
                amount,
                currency,
                "status",
                note,
            )
        else:
            return None
        return entry if self.store.add_ledger(entry) else None

    # --- report ----------------------------------------------------------------------------
    def report(self, month: str | None = None) -> CostReport:
        """Counts and estimated cost per provider and category for ``month`` (``"2026-11"``,
        default: this month). Provider pricing from status webhooks wins over the estimate made
        when sending, except that messages made free by the allowance stay free."""
        month = month or self.clock().strftime("%Y-%m")
        buckets: dict[str, dict[tuple[str, str], LedgerEntry]] = {"send": {}, "status": {}, "failure": {}}
        for entry in self.store.ledger(month=month):
            buckets.setdefault(entry.source, {}).setdefault((entry.provider, entry.message_id), entry)
        sends, statuses, failures = buckets["send"], buckets["status"], buckets["failure"]
        acc: dict[tuple[str, str], dict[str, Any]] = {}
        keys = dict.fromkeys([*sends, *statuses, *failures])
        for key in keys:
            send, status, failure = sends.get(key), statuses.get(key), failures.get(key)
            chosen = status or send or failure
            assert chosen is not None
            if send is not None and send.note == "free-allowance":
                chosen = send
            category = (send.category if send is not None else None) or chosen.category or "unknown"
            line = acc.setdefault(
                (chosen.provider, category),
                {"messages": 0, "billable": 0, "free": 0, "unknown": 0, "amount": ZERO, "failed": 0},
            )
            if failure is not None:
                # Accepted, then failed: not charged, whatever pricing was reported before.
                line["failed"] += 1
                continue
            line["messages"] += 1
            if chosen.note == "free-allowance":
                line["free"] += 1
            if chosen.amount is None:
                line["unknown"] += 1
            else:
                line["amount"] += chosen.amount
                if chosen.amount > 0:
                    line["billable"] += 1
        lines = tuple(
            CostLine(
                provider,
                category,
                v["messages"],
                v["billable"],
                v["free"],
                v["unknown"],
                v["amount"],
                v["failed"],
            )
            for (provider, category), v in sorted(acc.items())
        )
        return CostReport(month, self.prices.currency, lines)

    # --- CBP conversations -----------------------------------------------------------------
    @staticmethod
    def _conv_key(provider: str, business: str | None, user: str, category: str) -> str:
        return f"conv:{provider}:{business or '-'}:{user}:{category}"

    def _conversation_open(
        self, provider: str, business: str | None, user: str, category: str, at: datetime, hours: int
    ) -> bool:
        # A service message falls into any open conversation; a template needs its own category.
        categories = CATEGORIES if category == "service" else (category,)
        for cat in categories:
            opened = self.store.get_value(_KV, self._conv_key(provider, business, user, cat))
            if opened and timedelta(0) <= at - datetime.fromisoformat(opened) < timedelta(hours=hours):
                return True
        return False
