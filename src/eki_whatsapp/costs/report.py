"""The monthly report: counts and estimated costs per provider and category, and who charges
what — Meta's rates (directly or passed through by Twilio), Twilio's own fees on outbound and on
inbound messages, and the free-allowance discount as a line of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..store.base import LedgerEntry
from .prices import ZERO

__all__ = ["CostLine", "CostReport", "build_report"]

#: The category of the lines of inbound fees.
INBOUND = "inbound"


@dataclass(frozen=True, slots=True)
class CostLine:
    """One provider and category of a month.

    Attributes:
        messages: messages sent (failed ones excluded, see ``failed``); for the ``inbound``
            category, inbound messages charged a fee.
        billable: messages charged (price > 0 after any allowance discount).
        free: messages whose price the monthly free allowance waived.
        unknown: messages whose cost could not be told.
        known_amount: what is paid: the known prices minus the allowance ``discount``.
        failed: messages that failed after being accepted (not charged).
        discount: the prices the free allowance waived (shown as a discount, never hidden).
        fee: the provider's own per-message fee within the prices (Twilio's; the rest of a
            Twilio line is Meta's rates passed through).
        timed_out: sends that timed out after the request left, priced because they may have
            been delivered.
    """

    provider: str
    category: str
    messages: int = 0
    billable: int = 0
    free: int = 0
    unknown: int = 0
    known_amount: Decimal = ZERO
    failed: int = 0
    discount: Decimal = ZERO
    fee: Decimal = ZERO
    timed_out: int = 0

    @property
    def amount(self) -> Decimal | None:
        """The cost, or ``None`` ("unknown cost") when some message could not be priced."""
        return None if self.unknown else self.known_amount

    @property
    def gross(self) -> Decimal:
        """The known prices before the allowance discount."""
        return self.known_amount + self.discount


@dataclass(frozen=True, slots=True)
class CostReport:
    """Counts and estimated costs of one month, per provider and category."""

    month: str
    currency: str
    lines: tuple[CostLine, ...]
    #: Whose rates a provider with a fee of its own passes through (its price table's
    #: ``includes``: Twilio → Meta); a provider not named charges its own rates.
    rates_of: Mapping[str, str] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        """Sum of the known costs, discounts deducted (see :attr:`unknown` for what is missing)."""
        return sum((line.known_amount for line in self.lines), ZERO)

    @property
    def unknown(self) -> int:
        """Messages whose cost is unknown."""
        return sum(line.unknown for line in self.lines)

    @property
    def messages(self) -> int:
        """Outbound messages sent (inbound fee lines not counted)."""
        return sum(line.messages for line in self.lines if line.category != INBOUND)

    @property
    def discount(self) -> Decimal:
        """What the free allowances waived this month."""
        return sum((line.discount for line in self.lines), ZERO)

    def by_provider(self) -> dict[str, Decimal]:
        """Known cost per provider (what each provider bills, inbound fees included)."""
        out: dict[str, Decimal] = {}
        for line in self.lines:
            out[line.provider] = out.get(line.provider, ZERO) + line.known_amount
        return out

    def fees(self) -> dict[str, Decimal]:
        """Who charges what: ``{"meta": Meta's rates (sent directly or passed through),
        "twilio": Twilio's outbound fees, "inbound": inbound fees, "allowance": -discount}``
        (a provider of your own appears under its name; whose rates a provider passes through
        is :attr:`rates_of`). Sums to :attr:`total`."""
        out: dict[str, Decimal] = {}
        inbound = ZERO
        for line in self.lines:
            if line.category == INBOUND:
                inbound += line.known_amount
                continue
            rates = line.gross - line.fee
            # Rates on a line of a provider with a fee are the passed-through ones (Twilio's
            # table includes Meta's); a provider without a fee charges its own rates.
            owner = self.rates_of.get(line.provider, line.provider) if line.fee > 0 else line.provider
            out[owner] = out.get(owner, ZERO) + rates
            if line.fee:
                out[line.provider] = out.get(line.provider, ZERO) + line.fee
        out["inbound"] = inbound
        out["allowance"] = -self.discount
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
            cost = f"{ln.gross:.4f}" if not ln.unknown else f"{ln.gross:.4f}+{ln.unknown}?"
            rows.append(
                f"{ln.provider:<8} {ln.category:<16} {ln.messages:>7} {ln.billable:>8} "
                f"{ln.free:>6} {ln.failed:>6} {cost:>12}"
            )
        for ln in self.lines:
            if ln.discount:
                label = f"{ln.provider} {ln.category} allowance"
                rows.append(f"{label:<33} {ln.free:>7} {'discount':>15} {-ln.discount:>12.4f}")
        fees = self.fees()
        passed = set(self.rates_of.values())  # whose rates others pass through: shown even at 0
        parts = [f"{name} {amount:.4f}" for name, amount in fees.items() if amount or name in passed]
        rows.append("by who charges: " + ", ".join(parts))
        total = f"{self.total:.4f}"
        if self.unknown:
            total += f" + unknown cost of {self.unknown} message(s)"
        rows.append(f"total {total}")
        return "\n".join(rows)


def build_report(
    entries: Iterable[LedgerEntry],
    month: str,
    currency: str,
    *,
    fee_of: Callable[[LedgerEntry], Decimal] | None = None,
    rates_of: Callable[[str], str | None] | None = None,
) -> CostReport:
    """The report of ``month`` from its ledger entries. Per message, the provider's pricing from
    a status webhook wins over the estimate made when sending; an allowance entry is a discount
    (at most the price); a failure after acceptance is counted as failed, not charged; inbound
    fees make lines of category ``inbound``. ``fee_of`` tells the provider's own fee within an
    entry's amount (none when not given); ``rates_of`` whose rates a provider passes through
    (``None``: its own)."""
    buckets: dict[str, dict[tuple[str, str], LedgerEntry]] = {
        "send": {},
        "status": {},
        "failure": {},
        "allowance": {},
        "inbound": {},
    }
    for entry in entries:
        buckets.setdefault(entry.source, {}).setdefault((entry.provider, entry.message_id), entry)
    sends, statuses, failures, discounts = (buckets[k] for k in ("send", "status", "failure", "allowance"))
    acc: dict[tuple[str, str], dict[str, Any]] = {}

    def bucket(provider: str, category: str) -> dict[str, Any]:
        return acc.setdefault(
            (provider, category),
            {
                "messages": 0,
                "billable": 0,
                "free": 0,
                "unknown": 0,
                "amount": ZERO,
                "failed": 0,
                "discount": ZERO,
                "fee": ZERO,
                "timed_out": 0,
            },
        )

    for key in dict.fromkeys([*sends, *statuses, *failures]):
        send, status, failure = sends.get(key), statuses.get(key), failures.get(key)
        chosen = status or send or failure
        assert chosen is not None
        category = (send.category if send is not None else None) or chosen.category or "unknown"
        line = bucket(chosen.provider, category)
        if failure is not None:
            # Accepted, then failed: not charged, whatever pricing was reported before.
            line["failed"] += 1
            continue
        line["messages"] += 1
        if chosen.note == "timed-out":
            line["timed_out"] += 1
        if chosen.amount is None:
            line["unknown"] += 1
            continue
        line["amount"] += chosen.amount
        if chosen.amount > 0:
            line["billable"] += 1
            if fee_of is not None:
                line["fee"] += fee_of(chosen)
        waived = discounts.get(key)
        if waived is not None and waived.amount:
            discount = min(waived.amount, chosen.amount)
            if discount > 0:
                line["free"] += 1
                line["discount"] += discount
                line["amount"] -= discount
                if discount == chosen.amount:
                    line["billable"] -= 1  # waived whole: not charged
    for entry in buckets["inbound"].values():
        line = bucket(entry.provider, INBOUND)
        line["messages"] += 1
        if entry.amount is None:
            line["unknown"] += 1
        else:
            line["amount"] += entry.amount
            line["billable"] += 1 if entry.amount > 0 else 0
            line["fee"] += entry.amount
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
            v["discount"],
            v["fee"],
            v["timed_out"],
        )
        for (provider, category), v in sorted(acc.items())
    )
    passes = {p: owner for p in {line.provider for line in lines} if rates_of and (owner := rates_of(p))}
    return CostReport(month, currency, lines, passes)
