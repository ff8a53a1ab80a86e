"""A user's history with an agent, in the Store: loaded within the memory budget when a turn
starts, saved with the turn (what is worth keeping of it) when it ends."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..store.base import batch
from .memory import Conversation, Message, TokenCounter, recall, sanitize
from .turn import Turn, mask

if TYPE_CHECKING:
    from ..store import Store
    from .agent import Agent

logger = logging.getLogger("eki_whatsapp.agent")

__all__ = ["History"]

#: Users whose last saved history is kept in memory, to skip reading, repairing and counting it
#: again when the store still holds exactly that at their next turn.
RECENT_USERS = 256


@dataclass(frozen=True)
class _Saved:
    """A history as this agent last saved it."""

    messages: list[Message]
    conversation: Conversation  # the same, repaired and counted
    counter: TokenCounter  # what counted it
    version: str | None  # the store's version of it, when the store tells versions


class History:
    """The histories of ``agent``'s users (``agent.history()``, ``agent.forget()``...)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._recent: OrderedDict[str, _Saved] = OrderedDict()  # by memory key, least recent first
        self._recent_lock = threading.Lock()  # turns of several event loops may share the agent

    def load(self, store: Store, user_id: str) -> Conversation:
        """The user's history within the memory budget (stored histories may be far larger).

        A store that tells versions (``memory_version``) is asked whether it still holds what
        this agent saved last, and only read when it does not; another store is read and its
        history compared with that. Either way only a history that is not the one saved is
        repaired and counted again.
        """
        key = self.agent.memory_key(user_id)
        budget = {"max_turns": self.agent.memory_turns, "max_tokens": self.agent.memory_tokens}
        with self._recent_lock:
            recent = self._recent.get(key)
        if recent is not None and recent.counter is not self.agent.token_counter:
            recent = None
        version_of = getattr(store, "memory_version", None)
        try:
            version = version_of(key) if version_of is not None else None
            if version_of is not None and version is None:
                return Conversation()  # the store has no history for this user
            if recent is not None and version is not None and version == recent.version:
                return recent.conversation.trimmed(**budget)
            stored = store.load_memory(key)
        except Exception:
            logger.exception("agent %r could not load the memory of %s", self.agent.name, mask(user_id))
            return Conversation()
        if recent is not None and version is None and recent.messages == stored:
            return recent.conversation.trimmed(**budget)
        recalled = recall(stored, count=self.agent.token_counter, **budget)
        return replace(recalled, version=version)

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
        messages = kept.messages()
        with batch(store):  # one commit for the turn's writes
            try:
                version = kept.version  # what is stored when nothing needs writing
                if self.save(store, key, kept, messages):
                    # Read in the write's transaction (SQLite): the version of what was written.
                    version_of = getattr(store, "memory_version", None)
                    version = version_of(key) if version_of is not None else None
            except Exception:
                self.forget_recent(key)
                logger.exception("agent %r could not save the memory of %s", self.agent.name, mask(user_id))
            else:
                as_stored = Conversation(kept.turns, kept.sizes, 0, len(messages), version)
                saved = _Saved(messages, as_stored, self.agent.token_counter, version)
                with self._recent_lock:
                    self._recent[key] = saved
                    self._recent.move_to_end(key)
                    if len(self._recent) > RECENT_USERS:
                        self._recent.popitem(last=False)
            self.record_usage(store, turn)

    def record_usage(self, store: Store, turn: Turn) -> None:
        """Write the usage of ``turn``'s model calls (each was billed, whatever the turn's end)."""
        for record in turn.usage_records:
            try:
                store.record_usage(record)
            except Exception:
                logger.exception("agent %r could not record usage", self.agent.name)

    def save(self, store: Store, key: str, kept: Conversation, messages: list[Message]) -> bool:
        """Store ``kept`` (its ``messages``) at ``key``: its new messages appended to the stored
        history when the store can (``append_memory``) and ``kept`` is that history, unchanged
        since it was read, with turns dropped and added; else the whole list. ``False`` when
        nothing needed writing."""
        change = kept.appended()
        if change is not None:
            drop, new = change
            if not drop and not new:
                return False  # the stored history is already this one (a refused message...)
            append = getattr(store, "append_memory", None)
            version = kept.version  # None: not read from a store that tells versions
            if append is not None and version is not None and append(key, new, drop=drop, version=version):
                return True
        store.save_memory(key, messages)
        return True

    def forget_recent(self, key: str) -> None:
        with self._recent_lock:
            self._recent.pop(key, None)
