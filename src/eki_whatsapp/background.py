"""Work after the answer: the handler threads, one event loop for async handlers, and waiting.

The bot answers a webhook first and handles it after (docs/deployment.md): sync handlers run
on a thread pool (``WHATSAPP_HANDLER_WORKERS``), async ones on one long-lived loop in a daemon
thread (async clients such as httpx and openai bind to a loop). :class:`Background` owns both
and what is still running on them, so ``bot.drain()`` and ``bot.close()`` can wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

logger = logging.getLogger("eki_whatsapp")

T = TypeVar("T")

__all__ = ["Background", "LoopThread"]


class LoopThread:
    """One long-lived event loop in a daemon thread, for async handlers under the sync face.

    Async clients (httpx, openai) bind to a loop, so every async handler runs on this one.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="eki-whatsapp-loop", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def current(self) -> asyncio.AbstractEventLoop | None:
        """The loop, if started."""
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop())
        return future.result()

    def stop(self) -> None:
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None


class Background:
    """The bot's handler threads and loop, and the work still running on them.

    Args:
        executor: a thread pool of your own (it is not shut down by :meth:`close`).
        workers: the size of the pool made when ``executor`` is not given.
    """

    def __init__(self, executor: ThreadPoolExecutor | None, workers: int) -> None:
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eki-whatsapp")
        self.loop_thread = LoopThread()
        self._pending: set[Future[Any] | asyncio.Task[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` on a handler thread; :meth:`drain` waits for it."""
        self.track(self.executor.submit(func, *args))

    def track(self, item: Future[Any] | asyncio.Task[Any]) -> None:
        """Wait for ``item`` in :meth:`drain` (a future) or :meth:`drain_async` (a task)."""
        with self._lock:
            self._pending.add(item)
        item.add_done_callback(self._untrack)

    def _untrack(self, item: Future[Any] | asyncio.Task[Any]) -> None:
        with self._lock:
            self._pending.discard(item)

    def run_later(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Finish ``coro`` on the running loop later; an exception is logged (``bot.run_later``)."""
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_log_failure)
        if asyncio.get_running_loop() is self.loop_thread.current():
            done: Future[Any] = Future()  # the sync face's drain() waits on futures
            task.add_done_callback(lambda _: done.set_result(None))
            self.track(done)
        else:
            self.track(task)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the background loop from sync code and wait for it."""
        return self.loop_thread.run(coro)

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Wait for work on the handler threads (sync face). ``True`` when idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                futures = [f for f in self._pending if isinstance(f, Future)]
            if not futures:
                return True
            for fut in futures:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    fut.result(timeout=remaining)
                except Exception:  # noqa: S112 - handler errors are already logged
                    continue
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    return not any(isinstance(f, Future) and not f.done() for f in self._pending)

    async def drain_async(self) -> None:
        """Wait for the tasks started on the running loop (async face)."""
        while True:
            with self._lock:
                tasks = [t for t in self._pending if isinstance(t, asyncio.Task)]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    def shutdown(self) -> None:
        """Shut the handler threads down (when the pool is the bot's own) after they finish."""
        if self._own_executor:
            self.executor.shutdown(wait=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background handler work failed", exc_info=task.exception())
