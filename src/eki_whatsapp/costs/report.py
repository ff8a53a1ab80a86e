"""The monthly report: counts and estimated costs per provider and category."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..store.base import LedgerEntry
from .prices import ZERO

__all__ = ["CostLine", "CostReport", "build_report"]


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


def build_report(entries: Iterable[LedgerEntry], month: str, currency: str) -> CostReport:
    """The report of ``month`` from its ledger entries. Per message, the provider's pricing from
    a status webhook wins over the estimate made when sending, except that messages made free by
    the allowance stay free; a failure after acceptance is counted as failed, not charged."""
    buckets: dict[str, dict[tuple[str, str], LedgerEntry]] = {"send": {}, "status": {}, "failure": {}}
    for entry in entries:
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
    return CostReport(month, currency, lines)
