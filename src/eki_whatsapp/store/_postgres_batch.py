"""Group commit for the PostgreSQL store: writes of one kind made at the same moment by the
threads of one process go to the server together, as one statement (one transaction, one
commit), instead of one transaction each.

A thread that writes while fewer than ``concurrency`` batches of that kind are under way runs
one at once, with every write queued by then (its own first); the threads that write meanwhile
queue, and the oldest of them runs the next batch when one is done. Nobody waits for a batch to
fill: a batch is what arrived during the round trips under way, one write when the process is
quiet, more as it gets busy, when the server's work per transaction (its commit above all)
matters most. Two batches under way, not one: a batch never waits for a whole other one to
commit, only for a free turn.

Each caller returns only when its own write is committed, with its own result, exactly as if it
had written alone: a webhook is still acknowledged only after its row is on disk. A batch that
fails (a value the server refuses, a lost connection) settles nothing: each of its writers then
writes alone, so an error reaches the caller whose write caused it and no other.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupWriter", "rows_of"]

T = TypeVar("T")
R = TypeVar("R")


class _Writer(Generic[T, R]):
    """One caller's write, queued."""

    __slots__ = ("done", "item", "key", "leads", "result", "settled")

    def __init__(self, item: T, key: Hashable) -> None:
        self.item = item
        self.key = key
        #: Set when the batch holding this write is over, or when it is this writer's turn to
        #: run the next batch (``leads``).
        self.done = threading.Event()
        self.leads = False
        self.settled = False
        self.result: R | None = None


class GroupWriter(Generic[T, R]):
    """Runs ``write_many`` over the writes of concurrent callers (see the module's text).

    ``write_many(items)`` makes all of them in one statement and returns one result per item, in
    order; ``write_one(item)`` makes one alone (a batch of one, and a write whose batch failed).
    ``key(item)`` names what a write touches: two writes with the same key never share a batch
    (the second goes in the next one, and sees the first as committed, as one after the other).
    At most ``limit`` writes per batch: each size is a statement of its own for the server.
    """

    def __init__(
        self,
        write_many: Callable[[Sequence[T]], Sequence[R]],
        write_one: Callable[[T], R],
        key: Callable[[T], Hashable],
        *,
        limit: int = 32,
        concurrency: int = 2,
    ) -> None:
        self._write_many = write_many
        self._write_one = write_one
        self._key = key
        self._limit = limit
        self._concurrency = concurrency
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        #: Writes waiting for a batch (not yet in one), in arrival order.
        self._queue: list[_Writer[T, R]] = []
        self._running = 0  # batches under way (their leaders have not handed over yet)

    def __call__(self, item: T) -> R:
        if self._pid != os.getpid():  # inherited through fork: the parent's batches are not ours
            self._start()
        me: _Writer[T, R] = _Writer(item, self._key(item))
        with self._lock:
            me.leads = self._running < self._concurrency
            if me.leads:
                self._running += 1
            else:
                self._queue.append(me)
        if not me.leads:
            me.done.wait()  # our batch is over, or we were handed the lead
        if me.leads:
            self._lead(me)
        if me.settled:
            return me.result  # type: ignore[return-value]  # set with settled
        return self._write_one(item)  # our batch failed: alone

    def _lead(self, me: _Writer[T, R]) -> None:
        """Run one batch (ours, then the queue's oldest writes), then hand the lead over to the
        oldest write still waiting."""
        with self._lock:
            batch, later, keys = [me], [], {me.key}
            for writer in self._queue:
                if len(batch) < self._limit and writer.key not in keys:
                    batch.append(writer)
                    keys.add(writer.key)
                else:
                    later.append(writer)
            self._queue = later
        try:
            if len(batch) == 1:  # ours alone: its error is ours, raised after the hand-over
                me.result, me.settled = self._write_one(me.item), True
            else:
                for writer, result in zip(batch, self._write_many([w.item for w in batch]), strict=True):
                    writer.result, writer.settled = result, True
        except Exception:
            if len(batch) == 1:
                raise
            # Unsettled, each writer of the batch writes alone and meets its own error, if any.
        finally:
            with self._lock:
                following = self._queue.pop(0) if self._queue else None
                if following is not None:
                    following.leads = True
                else:
                    self._running -= 1
            for writer in batch[1:]:
                writer.done.set()
            if following is not None:
                following.done.set()


@functools.cache
def rows_of(count: int, types: int | tuple[str, ...]) -> str:
    """``count`` rows of numbered placeholders, for a raw cursor's multi-row ``VALUES``: of
    ``types`` columns when a number, else cast to each of ``types`` (needed where nothing else
    says a column's type, as in ``FROM (VALUES ...)``). ``rows_of(2, 2)`` is ``($1,$2),($3,$4)``,
    ``rows_of(1, ("bigint", "text"))`` is ``($1::bigint,$2::text)``."""
    casts = [""] * types if isinstance(types, int) else [f"::{t}" for t in types]
    width = len(casts)
    return ",".join(
        "(" + ",".join(f"${row * width + column + 1}{cast}" for column, cast in enumerate(casts)) + ")"
        for row in range(count)
    )
