"""A user's history with an agent, in the Store: loaded within the memory budget when a turn
starts, saved with the turn (what is worth keeping of it) when it ends."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..store.base import batch
from .memory import Conversation, recall, sanitize
from .turn import Turn, mask

if TYPE_CHECKING:
    from ..store import Store
    from .agent import Agent

logger = logging.getLogger("eki_whatsapp.agent")

__all__ = ["History"]


class History:
    """The histories of ``agent``'s users (``agent.history()``, ``agent.forget()``...)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def load(self, store: Store, user_id: str) -> Conversation:
        """The user's history within the memory budget (stored histories may be far larger)."""
        try:
            stored = store.load_memory(self.agent.memory_key(user_id))
        except Exception:
            logger.exception("agent %r could not load the memory of %s", self.agent.name, mask(user_id))
            return Conversation()
        return recall(
            stored,
            max_turns=self.agent.memory_turns,
            max_tokens=self.agent.memory_tokens,
            count=self.agent.token_counter,
        )

    def remember(self, store: Store, user_id: str, turn: Turn, fallback: str | None) -> None:
        if fallback is None:
            items = turn.items
        elif fallback in ("refused", "content_filter"):
            items = []  # sent again, a refused message would be refused again
        elif fallback == "context_length" or turn.compacted:
            items = turn.items[:1]  # the tool rounds are what did not fit: keep the question only
        else:
            items = sanitize(turn.items)
        kept = turn.history.extended(items, count=turn.count).trimmed(
            max_turns=self.agent.memory_turns, max_tokens=self.agent.memory_tokens
        )
        with batch(store):  # one commit for the turn's writes
            try:
                store.save_memory(self.agent.memory_key(user_id), kept.messages())
            except Exception:
                logger.exception("agent %r could not save the memory of %s", self.agent.name, mask(user_id))
            for record in turn.usage_records:
                try:
                    store.record_usage(record)
                except Exception:
                    logger.exception("agent %r could not record usage", self.agent.name)
