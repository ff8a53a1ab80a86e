"""A user's history with an agent, in the Store: loaded within the memory budget when a turn
starts, saved with the turn (what is worth keeping of it) when it ends."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..store.base import batch
from .memory import Conversation, Message, TokenCounter, recall, sanitize
from .turn import Turn, mask

if TYPE_CHECKING:
    from ..store import Store
    from .agent import Agent

logger = logging.getLogger("eki_whatsapp.agent")

__all__ = ["History"]

#: Users whose last saved history is kept in memory, to skip repairing and counting it again
#: when the store still holds exactly that at their next turn.
RECENT_USERS = 256


class History:
    """The histories of ``agent``'s users (``agent.history()``, ``agent.forget()``...)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # memory key -> (the list saved, it as a Conversation, the token counter that sized it)
        self._recent: OrderedDict[str, tuple[list[Message], Conversation, TokenCounter]] = OrderedDict()
        self._recent_lock = threading.Lock()  # turns of several event loops may share the agent

    def load(self, store: Store, user_id: str) -> Conversation:
        """The user's history within the memory budget (stored histories may be far larger)."""
        key = self.agent.memory_key(user_id)
        try:
            stored = store.load_memory(key)
        except Exception:
            logger.exception("agent %r could not load the memory of %s", self.agent.name, mask(user_id))
            return Conversation()
        budget = {"max_turns": self.agent.memory_turns, "max_tokens": self.agent.memory_tokens}
        with self._recent_lock:
            recent = self._recent.get(key)
        if recent is not None and recent[2] is self.agent.token_counter and recent[0] == stored:
            return recent[1].trimmed(**budget)  # what this agent saved: repaired and counted then
        return recall(stored, count=self.agent.token_counter, **budget)

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
        key = self.agent.memory_key(user_id)
        with batch(store):  # one commit for the turn's writes
            try:
                saved = self.save(store, key, kept)
            except Exception:
                self.forget_recent(key)
                logger.exception("agent %r could not save the memory of %s", self.agent.name, mask(user_id))
            else:
                as_stored = Conversation(kept.turns, kept.sizes, start=0, stored=len(saved))
                with self._recent_lock:
                    self._recent[key] = (saved, as_stored, self.agent.token_counter)
                    self._recent.move_to_end(key)
                    if len(self._recent) > RECENT_USERS:
                        self._recent.popitem(last=False)
            for record in turn.usage_records:
                try:
                    store.record_usage(record)
                except Exception:
                    logger.exception("agent %r could not record usage", self.agent.name)

    def save(self, store: Store, key: str, kept: Conversation) -> list[Message]:
        """Store ``kept`` at ``key`` and return the list stored: its new messages appended to
        the stored history when the store can (``append_memory``) and ``kept`` is that history
        with turns dropped and added, else the whole list written again."""
        messages = kept.messages()
        change = kept.appended()
        if change is not None:
            drop, new = change
            if not drop and not new:
                return messages  # nothing to change (a refused first message...)
            append = getattr(store, "append_memory", None)
            if append is not None and kept.stored and append(key, new, drop=drop, expect=kept.stored):
                return messages
        store.save_memory(key, messages)
        return messages

    def forget_recent(self, key: str) -> None:
        with self._recent_lock:
            self._recent.pop(key, None)
