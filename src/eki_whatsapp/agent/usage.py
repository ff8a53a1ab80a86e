"""Token usage and estimated cost of the agent's model calls.

Every model call is recorded in the Store as a :class:`~eki_whatsapp.store.UsageRecord`
(prompt, completion and cached tokens, and a cost when a price is known); a turn's total is on
its :class:`~eki_whatsapp.agent.AgentReply` and in the log; :func:`summarize` adds up a user's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..store.base import UsageRecord
from .model import ModelUsage

__all__ = ["DEFAULT_PRICES", "ModelPrice", "PriceTable", "UsageSummary", "summarize"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. ``cached_input`` defaults to ``input`` when unknown."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None

    def cost(self, usage: ModelUsage) -> Decimal:
        """Estimated cost of one call (cached prompt tokens at the cached price)."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        fresh = usage.prompt_tokens - cached
        cached_price = self.cached_input if self.cached_input is not None else self.input
        return (fresh * self.input + cached * cached_price + usage.completion_tokens * self.output) / _MILLION


class PriceTable:
    """Prices by model id. A dated snapshot model id (``gpt-4.1-mini-2025-04-14``) uses the price
    of its base id (``gpt-4.1-mini``) when not listed itself.

    Example::

        prices = PriceTable({"gpt-4.1-mini": ModelPrice(Decimal("0.40"), Decimal("1.60"), Decimal("0.10"))})
    """

    def __init__(self, prices: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None) -> None:
        self._prices: dict[str, ModelPrice] = {}
        for model, price in (prices or {}).items():
            if not isinstance(price, ModelPrice):
                price = ModelPrice(
                    Decimal(str(price["input"])),
                    Decimal(str(price["output"])),
                    Decimal(str(price["cached_input"])) if price.get("cached_input") is not None else None,
                )
            self._prices[model] = price

    def price(self, model: str) -> ModelPrice | None:
        """The price of ``model``, or ``None`` when unknown (then no cost is recorded)."""
        if model in self._prices:
            return self._prices[model]
        best = None
        for known in self._prices:
            if model.startswith(known + "-") and (best is None or len(known) > len(best)):
                best = known
        return self._prices[best] if best else None

    def cost(self, model: str, usage: ModelUsage) -> Decimal | None:
        price = self.price(model)
        return price.cost(usage) if price else None


#: OpenAI list prices (USD per 1M tokens) as published in 2025; check them before relying on them.
DEFAULT_PRICES = PriceTable(
    {
        "gpt-4.1": ModelPrice(Decimal("2.00"), Decimal("8.00"), Decimal("0.50")),
        "gpt-4.1-mini": ModelPrice(Decimal("0.40"), Decimal("1.60"), Decimal("0.10")),
        "gpt-4.1-nano": ModelPrice(Decimal("0.10"), Decimal("0.40"), Decimal("0.025")),
        "gpt-4o": ModelPrice(Decimal("2.50"), Decimal("10.00"), Decimal("1.25")),
        "gpt-4o-mini": ModelPrice(Decimal("0.15"), Decimal("0.60"), Decimal("0.075")),
    }
)


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Totals over a set of calls; ``cost`` is ``None`` when no call had a known price."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def summarize(records: Iterable[UsageRecord]) -> UsageSummary:
    """Add up usage records (e.g. ``store.usage(user="34600111222")``)."""
    calls = prompt = completion = cached = 0
    cost: Decimal | None = None
    for r in records:
        calls += 1
        prompt += r.prompt_tokens
        completion += r.completion_tokens
        cached += r.cached_tokens
        if r.cost is not None:
            cost = (cost or Decimal(0)) + r.cost
    return UsageSummary(calls, prompt, completion, cached, cost)
