"""The ledger entry of a status webhook: the provider's own pricing of a message, or that it
failed (kept apart, ``source="failure"``, and not charged)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ..store.base import LedgerEntry
from .prices import ZERO, PriceBook

if TYPE_CHECKING:
    from ..events import StatusUpdate

__all__ = ["status_entry"]


def status_entry(
    prices: PriceBook,
    status: StatusUpdate,
    category: str | None,
    at: datetime,
    user: str | None,
    market: str | None,
) -> LedgerEntry | None:
    """The entry ``status`` adds to the ledger (``None``: it has neither pricing nor failure).
    ``category`` is the message's from its log row, used when the pricing names none."""
    pricing = status.pricing
    if status.failed:
        p, m = status.provider, status.message_id
        return LedgerEntry(
            p, m, category, at, user, market, None, False, ZERO, source="failure", note="failed"
        )
    if pricing is None:
        return None
    cat = (pricing.category or category or "").lower() or None
    model = (pricing.pricing_model or "").upper() or None
    free = (pricing.type or "").startswith("free") or pricing.billable is False
    if free:
        amount: Decimal | None = ZERO
        note: str | None = pricing.type or "not billable"
        currency = prices.currency
    else:
        quote = prices.quote(status.provider, cat, market, at=at, in_window=False)
        amount, note, currency = quote.amount, quote.note, quote.currency
    # positional, in field order: this runs for every priced status webhook
    billable = None if amount is None else amount > 0
    return LedgerEntry(
        status.provider,
        status.message_id,
        cat,
        at,
        user,
        market,
        model,
        billable,
        amount,
        currency,
        "status",
        note,
    )
