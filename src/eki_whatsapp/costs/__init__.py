"""What messages cost: dated price tables, a ledger fed by sends and status webhooks, a report.

* :mod:`~eki_whatsapp.costs.prices` — :class:`PriceBook`: every provider's price tables, each
  dated (``effective``), per market and category, with any monthly free allowance;
* :mod:`~eki_whatsapp.costs.ledger` — :class:`Costs` (``bot.costs``): sends and statuses priced
  in the Store;
* :mod:`~eki_whatsapp.costs.allowances` — the monthly free allowances and their counters;
* :mod:`~eki_whatsapp.costs.conversations` — open conversations under conversation-based pricing;
* :mod:`~eki_whatsapp.costs.statuses` — the ledger entry of a priced or failed status;
* :mod:`~eki_whatsapp.costs.report` — :class:`CostReport`: ``bot.costs.report("2026-11")``;
* :mod:`~eki_whatsapp.costs.markets` — the user's country, hence pricing market.
"""

from __future__ import annotations

from .ledger import Costs
from .markets import country_of
from .prices import CATEGORIES, Allowance, PriceBook, PriceTable, Quote, Source
from .report import CostLine, CostReport

__all__ = [
    "CATEGORIES",
    "Allowance",
    "CostLine",
    "CostReport",
    "Costs",
    "PriceBook",
    "PriceTable",
    "Quote",
    "Source",
    "country_of",
]
