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
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ._forks import in_child

logger = logging.getLogger("eki_whatsapp")

T = TypeVar("T")

__all__ = ["Background", "LoopThread", "WorkerThreads"]


class WorkerThreads:
    """The bot's own handler threads: a queue, and up to ``size`` threads that take from it.

    Leaner than a ``ThreadPoolExecutor`` on the path every message takes (no future and no
    callbacks per item), and it gathers work: a thread woken for new work first waits
    ``gather`` seconds while more arrives (a submission meanwhile wakes nobody), then takes the
    items one by one, waking one more thread while more are queued than threads are awake. Quick
    handlers thus run a burst on one thread instead of two threads trading the interpreter lock
    at every store call; slow handlers (a model call) still spread over every thread.
    :meth:`drain` waits on a count.
    """

    def __init__(self, size: int, name: str = "eki-whatsapp", *, gather: float = 0.001) -> None:
        self._size = size
        self._name = name
        self._gather = gather
        self._stopping = False
        self._reset()
        # A forked child (gunicorn --preload) has none of the parent's threads: start afresh.
        in_child(self._reset)

    def _reset(self) -> None:
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        lock = threading.Lock()
        self._wake = threading.Condition(lock)  # threads wait here for work
        self._gathered = threading.Condition(lock)  # the gathering thread waits here; shutdown ends it
        self._idle = threading.Condition(lock)  # drain() waits here for nothing left to do
        self._threads: list[threading.Thread] = []
        self._sleeping = 0  # threads waiting for work
        self._free = 0  # threads awake and about to take an item (each takes one)
        self._gathering = False  # a thread waits, or is about to wait, for more work to gather
        self._owed = False  # a gather is due: the next thread to take work waits first
        self._unfinished = 0  # queued or running

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` on one of the threads."""
        with self._wake:
            if self._stopping:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.append((func, args))
            self._unfinished += 1
            if not self._gathering and len(self._queue) > self._free:
                self._start_one()

    def _start_one(self) -> None:
        """Wake a sleeping thread, or start one (the lock is held); it gathers first."""
        if self._sleeping:
            self._sleeping -= 1
            self._free += 1
            self._owe_gather()
            self._wake.notify()
        elif len(self._threads) < self._size:
            self._free += 1
            self._owe_gather()
            thread = threading.Thread(
                target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        # else every thread is busy: the first to finish takes it

    def _owe_gather(self) -> None:
        if self._gather and not self._gathering:
            self._gathering = self._owed = True  # nobody else is woken until it has gathered

    def _run(self) -> None:
        wake, queue = self._wake, self._queue
        woken = True  # started or woken for new work, not back from an item
        while True:
            with wake:
                while True:
                    if woken and self._owed:  # this thread was woken to gather: do it now
                        self._owed = False
                        if queue and not self._stopping:
                            self._gathered.wait(self._gather)
                        self._gathering = False
                    if queue:
                        break
                    self._free -= 1
                    if self._stopping:
                        return
                    self._sleeping += 1
                    wake.wait()  # whoever wakes this thread counted it free first
                    woken = True
                func, args = queue.popleft()
                woken = False
                self._free -= 1
                if len(queue) > self._free and not self._gathering:
                    self._start_one()
            try:
                func(*args)
            except Exception:
                logger.exception("background work %r failed", func)
            with wake:
                self._free += 1
                self._unfinished -= 1
                if not self._unfinished:
                    self._idle.notify_all()

    def drain(self, deadline: float | None) -> bool:
        """Wait until nothing is queued or running (``deadline``: a ``time.monotonic()``)."""
        with self._idle:
            while self._unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def idle(self) -> bool:
        """Whether nothing is queued or running."""
        with self._wake:
            return not self._unfinished

    def shutdown(self) -> None:
        """Finish what is queued, then stop the threads."""
        with self._wake:
            self._stopping = True
            self._free += self._sleeping
            self._sleeping = 0
            self._wake.notify_all()
            self._gathered.notify_all()
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()


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
        # Work submitted here runs on lean threads of our own, unless the executor is the caller's
        # (a Django executor that closes stale connections around each call).
        self._threads = WorkerThreads(workers) if executor is None else None
        self.loop_thread = LoopThread()
        self._pending: set[Future[Any] | asyncio.Task[Any]] = set()
        self._lock = threading.Lock()

    @property
    def own_threads(self) -> bool:
        """Whether work runs on the bot's own threads (not on an executor of the caller's)."""
        return self._threads is not None

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` on a handler thread; :meth:`drain` waits for it."""
        if self._threads is not None:
            self._threads.submit(func, *args)
        else:
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
            if self._threads is not None and not self._threads.drain(deadline):
                return False
            with self._lock:
                futures = [f for f in self._pending if isinstance(f, Future)]
            if not futures:
                if self._threads is None or self._threads.idle():
                    return True
                continue
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
        if self._threads is not None:
            self._threads.shutdown()
        if self._own_executor:
            self.executor.shutdown(wait=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background handler work failed", exc_info=task.exception())
