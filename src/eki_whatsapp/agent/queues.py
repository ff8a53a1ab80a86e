"""One turn per user at a time, and a cap on model calls in flight.

A user who writes again while their previous message is being answered waits for that turn;
with ``merge_pending`` the messages that waited are answered together in one turn. The locks and
the cap are asyncio primitives, which belong to one event loop: each loop gets its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .reply import AgentReply

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["Queues"]


@dataclass(eq=False)  # compared by identity: two users may send the same text
class _Pending:
    text: str
    reply: AgentReply | None = None


@dataclass
class _UserQueue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[_Pending] = field(default_factory=list)
    refs: int = 0


class _LoopState:
    """Locks and the call cap, per event loop (asyncio primitives belong to one loop)."""

    def __init__(self, max_calls: int) -> None:
        self.users: dict[str, _UserQueue] = {}
        self.calls = asyncio.Semaphore(max_calls)


class Queues:
    """The per-user queues and the model-call cap of ``agent``, per event loop."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState(self.agent.max_concurrent_calls)
        return state

    def calls(self) -> asyncio.Semaphore:
        """The cap on model calls in flight (``max_concurrent_calls``) on the running loop."""
        return self._state().calls

    async def one_at_a_time(
        self, user_id: str, text: str, turn: Callable[[str], Awaitable[AgentReply]]
    ) -> AgentReply:
        """Run ``turn(text)`` once the user's previous turn is over; with ``merge_pending`` the
        texts that waited meanwhile go in one turn, and each of their callers gets its reply
        (``merged=True`` for all but the one that ran it)."""
        state = self._state()
        queue = state.users.get(user_id)
        if queue is None:
            queue = state.users[user_id] = _UserQueue()
        entry = _Pending(text)
        queue.pending.append(entry)
        queue.refs += 1
        try:
            async with queue.lock:
                if entry.reply is not None:
                    return replace(entry.reply, merged=True)
                merge = self.agent.merge_pending and entry in queue.pending
                batch = list(queue.pending) if merge else [entry]
                queue.pending = [p for p in queue.pending if p not in batch]
                reply = await turn("\n".join(p.text for p in batch))
                for p in batch:
                    p.reply = reply
                return reply
        finally:
            queue.refs -= 1
            if queue.refs == 0 and state.users.get(user_id) is queue:
                del state.users[user_id]
