"""Meta's price facts that are configured rather than in the price tables.

Meta does not charge for a number of messages a month (docs/routing.md, "Free allowance");
``WHATSAPP_META_FREE_ALLOWANCE`` sets that number for this business. The rates themselves are
in the price tables (:mod:`eki_whatsapp.costs.prices`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...settings import Settings

__all__ = ["free_allowance"]


def free_allowance(settings: Settings) -> int:
    """Messages a month Meta does not charge for (0: none configured; a price table's
    ``free_allowance`` may still give one)."""
    return settings.whatsapp_meta_free_allowance
