"""Price tables: what one message costs on each provider, by date, market and category.

Either pricing model of Meta: ``PMP`` (per delivered message, from 2025-07-01) or ``CBP`` (per
24-hour conversation, before). A table may include another provider's rates (Twilio passes
Meta's through and adds its own fee per outbound and per inbound message) and a monthly free
allowance. Every amount of the shipped tables (``eki_whatsapp/costs/prices.json``) names its
source — a URL and a date, and whether it was verified — on the amount or on its table; replace
them with ``WHATSAPP_PRICE_TABLE=/path/prices.json``. Every top-level list of the file is a
provider's tables, so a provider added to the bot is priced by adding its key.

A table may be a *rule* that is reported but not verified (``"rule": "meta-2026-10",
"verified": false``): it applies only when ``WHATSAPP_PRICE_RULES`` names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .markets import country_of

__all__ = ["CATEGORIES", "ZERO", "Allowance", "PriceBook", "PriceTable", "Quote", "Source"]

#: The four categories of Meta's pricing (providers may report others, e.g. ``marketing_lite``).
CATEGORIES = ("marketing", "utility", "authentication", "service")

ZERO = Decimal("0")


def _decimal(value: Any, where: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ConfigError(f"price table: {where} is {value!r}, not a number") from exc
    if result < 0:
        raise ConfigError(f"price table: {where} is negative")
    return result


@dataclass(frozen=True, slots=True)
class Source:
    """Where a price comes from.

    Attributes:
        key: its name in the table's ``sources``.
        url: the page read (``None`` when the source is not a web page, see ``ref``).
        date: the date the figures apply from, or the page's date.
        verified: read on the provider's own page (``False``: third-party figures).
        says: what the source says, briefly.
        ref: a reference that is not a URL (e.g. an issue of this project).
    """

    key: str
    url: str | None
    date: date | None
    verified: bool = False
    says: str = ""
    ref: str | None = None

    @classmethod
    def from_data(cls, key: str, data: Any) -> Source:
        """From ``{"url": ..., "date": "2026-01-01", "verified": false, "says": ...}``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"price table: sources.{key} must be an object with 'url' and 'date'")
        try:
            day = date.fromisoformat(str(data["date"])) if data.get("date") else None
        except ValueError as exc:
            raise ConfigError(f"price table: sources.{key}.date must be a date like '2026-01-01'") from exc
        url = data.get("url")
        return cls(
            key,
            str(url) if url else None,
            day,
            bool(data.get("verified", False)),
            str(data.get("says", "")),
            str(data["ref"]) if data.get("ref") else None,
        )


@dataclass(frozen=True, slots=True)
class Allowance:
    """Messages a month a provider does not charge for (e.g. Meta's 1,000 free service
    conversations under CBP pricing).

    Attributes:
        per_month: how many messages each calendar month (UTC).
        categories: the categories it covers (empty: every billable one).
    """

    per_month: int
    categories: frozenset[str] = frozenset()

    def covers(self, category: str | None) -> bool:
        """Whether a message of ``category`` may use the allowance."""
        return category is not None and (not self.categories or category in self.categories)

    @classmethod
    def from_data(cls, data: Any, where: str) -> Allowance | None:
        """From ``1000`` or ``{"per_month": 1000, "categories": ["service"]}`` (``None``: no allowance)."""
        if data is None:
            return None
        fields = data if isinstance(data, Mapping) else {"per_month": data}
        try:
            per_month = int(fields["per_month"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"price table: {where} free_allowance needs a whole 'per_month' number, e.g. "
                '{"per_month": 1000, "categories": ["service"]}'
            ) from exc
        if per_month < 0:
            raise ConfigError(f"price table: {where} free_allowance is negative")
        categories = frozenset(str(c).lower() for c in fields.get("categories", ()))
        return cls(per_month, categories) if per_month else None


@dataclass(frozen=True, slots=True)
class PriceTable:
    """The prices of one provider from one date on.

    Attributes:
        provider: the provider's name (``meta``, ``twilio``, ...).
        effective: first day the table applies (until the next table of that provider).
        model: ``PMP`` (per message), ``CBP`` (per 24-hour conversation) or ``fee`` (only a
            per-message fee, plus the rates of ``includes``).
        rates: ``{market: {category: amount}}``.
        fee_per_message: charged on every outbound message (Twilio's fee).
        includes: another provider whose rates are charged too (Twilio passes Meta's through).
        free_in_window: categories free inside the customer service window (PMP: service, utility).
        conversation_hours: length of a CBP conversation.
        free_allowance: messages a month that are not charged (``None``: no allowance).
        fee_per_inbound: charged on every inbound message (Twilio's fee applies both ways).
        rate_sources: ``{market: {category: source key}}`` for amounts with their own source
            (the others come from ``source``).
        rule: the name of a reported change this table models (``WHATSAPP_PRICE_RULES``).
        verified: ``False`` for a rule not confirmed on the provider's own page: the table
            applies only when ``WHATSAPP_PRICE_RULES`` names its ``rule``.
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
    free_allowance: Allowance | None = None
    fee_per_inbound: Decimal = ZERO
    rate_sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    rule: str | None = None
    verified: bool = True

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
        sources: dict[str, dict[str, str]] = {}
        for market, by_category in dict(data.get("rates") or {}).items():
            rates[str(market)] = {}
            for cat, value in dict(by_category).items():
                where = f"{provider} {effective} {market}.{cat}"
                # An amount is a number, or {"amount": ..., "source": key} naming its own source.
                if isinstance(value, Mapping):
                    if value.get("source"):
                        sources.setdefault(str(market), {})[str(cat).lower()] = str(value["source"])
                    value = value.get("amount")
                rates[str(market)][str(cat).lower()] = _decimal(value, where)
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
            free_allowance=Allowance.from_data(data.get("free_allowance"), f"{provider} {effective}"),
            fee_per_inbound=_decimal(data.get("fee_per_inbound", 0), f"{provider} {effective} inbound fee"),
            rate_sources=sources,
            rule=str(data["rule"]) if data.get("rule") else None,
            verified=bool(data.get("verified", True)),
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


#: What a quote depends on: provider, category, market, day, in window, conversation open.
_QuoteKey = tuple[str, "str | None", "str | None", date, bool, bool]


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
        sources: Mapping[str, Source] | None = None,
        rules: Iterable[str] = (),
    ) -> None:
        self.currency = currency
        self.about = about
        self.markets = {k.upper(): v for k, v in (markets or {}).items()}
        self.sources: dict[str, Source] = dict(sources or {})
        #: The reported-but-unverified rules switched on (``WHATSAPP_PRICE_RULES``).
        self.rules = frozenset(rules)
        #: Tables left out: unverified rules not switched on.
        self.off: list[PriceTable] = []
        self.tables: dict[str, list[PriceTable]] = {}
        for table in tables:
            if not table.verified and (table.rule is None or table.rule not in self.rules):
                self.off.append(table)
                continue
            self.tables.setdefault(table.provider, []).append(table)
        for items in self.tables.values():
            items.sort(key=lambda t: t.effective)
        #: Whether any table grants a free allowance (most books have none: skip the look-up).
        self.has_allowances = any(t.free_allowance is not None for t in tables_of(self.tables))
        #: The providers some table charges inbound messages for (Twilio); the others' inbound
        #: messages, priced on every webhook, skip the look-up of the day's table.
        self.inbound_charged = frozenset(t.provider for t in tables_of(self.tables) if t.fee_per_inbound)
        self._quotes: dict[_QuoteKey, Quote] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, rules: Iterable[str] = ()) -> PriceBook:
        """Build from the JSON shape of ``prices.json`` (``rules``: unverified rules to apply)."""
        currency = str(data.get("currency", "USD"))
        # Every top-level list of objects is one provider's tables (``"meta": [{...}, ...]``).
        tables = [
            PriceTable.from_dict(str(provider), item, currency=currency)
            for provider, items in data.items()
            if isinstance(items, list) and all(isinstance(item, Mapping) for item in items)
            for item in items
        ]
        sources = {str(k): Source.from_data(str(k), v) for k, v in dict(data.get("sources") or {}).items()}
        rules = frozenset(rules)
        known = {str(item.get("rule")) for items in data.values() if isinstance(items, list) for item in items
                 if isinstance(item, Mapping) and item.get("rule")}  # fmt: skip
        unknown = sorted(rules - known)
        if unknown:
            raise ConfigError(
                f"WHATSAPP_PRICE_RULES names {', '.join(unknown)}, which no price table defines "
                f"(rules in the table: {', '.join(sorted(known)) or 'none'})"
            )
        book = cls(
            tables,
            markets=data.get("markets") or {},
            currency=currency,
            about=str(data.get("about", "")),
            sources=sources,
            rules=rules,
        )
        for table in [*tables_of(book.tables), *book.off]:
            named = [table.source, *(k for by in table.rate_sources.values() for k in by.values())]
            missing = [k for k in named if sources and k and k not in sources]
            if missing:
                raise ConfigError(
                    f"price table for {table.provider} {table.effective}: source {missing[0]!r} "
                    "is not in 'sources' (add it with a 'url' and a 'date')"
                )
        return book

    @classmethod
    def default(cls, *, rules: Iterable[str] = ()) -> PriceBook:
        """The tables shipped with the library (``eki_whatsapp/costs/prices.json``); ``rules``
        switches on reported changes that are not verified yet (e.g. ``["meta-2026-10"]``)."""
        text = resources.files("eki_whatsapp.costs").joinpath("prices.json").read_text("utf-8")
        return cls.from_dict(json.loads(text), rules=rules)

    def source_of(self, provider: str, at: datetime | date, market: str, category: str) -> Source | None:
        """The source of the amount a message of ``category`` to ``market`` is priced with on
        that day (the amount's own source, else its table's; ``None`` when the table names none)."""
        table = self.table(provider, at)
        if table is None:
            return None
        if table.includes and not table.rates:
            return self.source_of(table.includes, at, market, category)
        key = table.rate_sources.get(market, {}).get(category.lower()) or table.source
        return self.sources.get(key)

    def inbound_fee(self, provider: str, at: datetime | date) -> Decimal:
        """What ``provider`` charges for one inbound message on that day (Twilio: its fee)."""
        if provider not in self.inbound_charged:
            return ZERO
        table = self.table(provider, at)
        return table.fee_per_inbound if table is not None else ZERO

    @classmethod
    def load(cls, path: str | Path, *, rules: Iterable[str] = ()) -> PriceBook:
        """Tables from a JSON file in the shape of ``prices.json`` (``WHATSAPP_PRICE_TABLE``)."""
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"WHATSAPP_PRICE_TABLE: cannot read {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"WHATSAPP_PRICE_TABLE: {path} is not valid JSON ({exc})") from exc
        return cls.from_dict(data, rules=rules)

    def table(self, provider: str, at: datetime | date) -> PriceTable | None:
        """The table of ``provider`` in force on that day (``None`` before the first)."""
        day = at.date() if isinstance(at, datetime) else at
        found = None
        for table in self.tables.get(provider, ()):
            if table.effective <= day:
                found = table
        return found

    def allowance(self, provider: str, at: datetime | date) -> Allowance | None:
        """The monthly free allowance of ``provider``'s table in force on that day, if any."""
        if not self.has_allowances:
            return None
        table = self.table(provider, at)
        return table.free_allowance if table is not None else None

    def own_fee(self, provider: str, at: datetime, amount: Decimal | None) -> Decimal:
        """The part of an outbound message's ``amount`` that is ``provider``'s own per-message fee
        (Twilio's), as opposed to the rates it passes through (Meta's)."""
        table = self.table(provider, at)
        if table is None or amount is None:
            return ZERO
        return min(table.fee_per_message, amount)

    def rates_of(self, provider: str, at: datetime | date) -> str | None:
        """Whose rates ``provider`` passes through on that day (its table's ``includes``)."""
        table = self.table(provider, at)
        return table.includes if table is not None else None

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
        quote = self._quote(key, at)
        if len(self._quotes) >= 4096:  # bounded: tables are immutable, keys are few in practice
            self._quotes.clear()
        self._quotes[key] = quote
        return quote

    def _quote(self, key: _QuoteKey, at: datetime) -> Quote:
        """The quote, uncached, of ``key`` (see :meth:`quote`)."""
        provider, category, market, _, in_window, conversation_open = key
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


def tables_of(tables: Mapping[str, list[PriceTable]]) -> Iterable[PriceTable]:
    """Every table of every provider."""
    for items in tables.values():
        yield from items
