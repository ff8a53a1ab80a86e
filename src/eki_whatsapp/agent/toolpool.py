"""Threads for sync tools, apart from everything else the event loop needs.

A sync tool runs in a worker thread; a thread cannot be stopped, so a tool that hangs keeps its
thread after its timeout has given the model an error. In the loop's default executor (shared
with DNS lookups for new connections and ``asyncio.to_thread``) a few hung calls would stall
every user. Here they only use up this pool: the count of such *stuck* calls is logged and kept
(:attr:`ToolPool.stuck`), a tool with too many stuck calls is refused at once instead of queued,
and turns that call no sync tool never touch the pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import weakref
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .tools import Tool, ToolContext

logger = logging.getLogger("eki_whatsapp.agent")

__all__ = ["ToolPool", "ToolStuck", "within"]


class ToolStuck(Exception):
    """The tool's earlier calls are still running past their timeout: this one is not started."""


class ToolPool:
    """A bounded pool of ``threads`` threads for sync tools (``AGENT_TOOL_THREADS``).

    One tool runs in at most half of the threads at once (its other calls wait, within their
    timeout), so one hung backend cannot take the threads of the other tools; once its share is
    all stuck, its calls are refused at once.
    """

    def __init__(self, threads: int, *, name: str = "agent") -> None:
        if threads < 1:
            raise ValueError("AGENT_TOOL_THREADS (tool_threads) must be >= 1")
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=f"eki-agent-tools-{name}")
        self._stuck: dict[str, int] = {}
        self._cond = threading.Lock()
        # asyncio semaphores belong to one event loop: one set per loop
        self._shares: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def stuck(self) -> int:
        """Calls that timed out and whose thread is still running."""
        with self._cond:
            return sum(self._stuck.values())

    def stuck_calls(self) -> dict[str, int]:
        """Stuck calls by tool name."""
        with self._cond:
            return {name: n for name, n in self._stuck.items() if n}

    async def run(self, t: Tool, kwargs: dict[str, Any], context: ToolContext | None, timeout: float) -> Any:
        """Run ``t`` in the pool; ``asyncio.TimeoutError`` after ``timeout`` seconds, waiting for
        a thread included (a thread that started is left to finish and counted as stuck).

        Raises:
            ToolStuck: this tool's share of the threads (or the whole pool) is stuck already.
        """
        share = max(1, self.threads // 2)
        with self._cond:
            total = sum(self._stuck.values())
            mine = self._stuck.get(t.name, 0)
        if total >= self.threads or mine >= share:
            raise ToolStuck(
                f"{mine} earlier calls of {t.name} are still running ({total}/{self.threads} stuck)"
            )
        loop = asyncio.get_running_loop()
        slots = self._slots(loop, t.name, share)
        deadline = loop.time() + timeout
        try:
            await asyncio.wait_for(slots.acquire(), timeout)
        except asyncio.TimeoutError:
            raise  # the tool's other calls hold its share: this one never started
        # The slot is given back when the thread is done, not when we stop waiting: a stuck call
        # keeps its tool's share used, so a hung tool cannot take every thread.
        call = contextvars.copy_context().run  # the tool sees the caller's context variables
        future = self._executor.submit(call, t.invoke, kwargs, context)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(slots.release))
        waiter = asyncio.wrap_future(future)
        try:
            done, _ = await asyncio.wait({waiter}, timeout=max(0.0, deadline - loop.time()))
        except asyncio.CancelledError:  # the turn's deadline: the thread may go on
            self._abandon(t.name, future, timeout=None)
            raise
        if not done:
            self._abandon(t.name, future, timeout=timeout)
            raise asyncio.TimeoutError
        return waiter.result()

    def _slots(self, loop: asyncio.AbstractEventLoop, name: str, share: int) -> asyncio.Semaphore:
        with self._cond:
            per_loop = self._shares.setdefault(loop, {})
            if name not in per_loop:
                per_loop[name] = asyncio.Semaphore(share)
            return per_loop[name]

    def _abandon(self, name: str, future: Future[Any], *, timeout: float | None) -> None:
        if future.cancel():
            return  # it never started: nothing is stuck
        with self._cond:
            self._stuck[name] = self._stuck.get(name, 0) + 1
            total = sum(self._stuck.values())
        future.add_done_callback(lambda _: self._finished(name))
        logger.warning(
            "tool %s %s; its thread is left running: %d of %d tool threads stuck (AGENT_TOOL_THREADS)",
            name,
            f"did not finish within {timeout:g}s"
            if timeout is not None
            else "was abandoned at the turn deadline",
            total,
            self.threads,
        )

    def _finished(self, name: str) -> None:
        with self._cond:
            self._stuck[name] = max(0, self._stuck.get(name, 0) - 1)
            total = sum(self._stuck.values())
        logger.info("a stuck call of tool %s finished after all (%d tool threads still stuck)", name, total)

    def shutdown(self) -> None:
        """Stop taking calls; running ones finish in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)


T = TypeVar("T")


_TIMEOUT = getattr(asyncio, "timeout", None)  # Python 3.11+


async def within(seconds: float, awaitable: Coroutine[Any, Any, T]) -> T:
    """``await`` with a deadline (``asyncio.TimeoutError`` after ``seconds``).

    ``asyncio.timeout`` (3.11+) does not wrap the coroutine in a task as ``wait_for`` does.
    """
    if _TIMEOUT is None:  # Python 3.10
        return await asyncio.wait_for(awaitable, seconds)
    async with _TIMEOUT(seconds):
        return await awaitable
