"""Open conversations under conversation-based pricing (CBP): the first billable message of a
category opens a conversation for the table's ``conversation_hours``; later messages of that
category (and any service message) fall into it free of charge. Kept in the Store's key-value
space, so every process sees them."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..store.base import Store
from .allowances import KV
from .prices import CATEGORIES

__all__ = ["Conversations"]


class Conversations:
    """The open CBP conversations of each (provider, business number, user, category)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def key(provider: str, business: str | None, user: str, category: str) -> str:
        return f"conv:{provider}:{business or '-'}:{user}:{category}"

    def is_open(
        self, provider: str, business: str | None, user: str, category: str, at: datetime, hours: int
    ) -> bool:
        """Whether a message of ``category`` at ``at`` falls into an open conversation."""
        # A service message falls into any open conversation; a template needs its own category.
        categories = CATEGORIES if category == "service" else (category,)
        for cat in categories:
            opened = self.store.get_value(KV, self.key(provider, business, user, cat))
            if opened and timedelta(0) <= at - datetime.fromisoformat(opened) < timedelta(hours=hours):
                return True
        return False

    def open(self, provider: str, business: str | None, user: str, category: str, at: datetime) -> None:
        """A message at ``at`` opened a conversation of ``category``."""
        self.store.set_value(KV, self.key(provider, business, user, category), at.isoformat())
