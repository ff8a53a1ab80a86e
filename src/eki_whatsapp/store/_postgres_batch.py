"""Statements of one kind that threads of one process make at the same moment go to the
PostgreSQL server together, as one statement: the webhook's inserts (group commit: one
transaction and one commit for all, instead of one each) and the handlers' reads of a user's
states.

A thread that calls while fewer than ``concurrency`` batches of that kind are under way runs
one at once, with every call queued by then (its own first); the threads that call meanwhile
queue, and the oldest of them runs the next batch when one is done. Nobody waits for a batch to
fill: a batch is what arrived during the round trips under way, one call when the process is
quiet, more as it gets busy, when the server's work per statement (a commit above all) matters
most. Two batches under way, not one: a batch never waits for a whole other one, only for a
free turn.

Each caller returns only when its own statement is done, with its own result, exactly as if it
had run alone: a webhook is still acknowledged only after its row is committed. A batch that
fails (a value the server refuses, a lost connection) settles nothing: each of its calls then
runs alone, so an error reaches the caller that caused it and no other.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

from .._forks import forks

__all__ = ["Grouped", "rows_of"]

T = TypeVar("T")
R = TypeVar("R")


class _Call(Generic[T, R]):
    """One caller's call, queued."""

    __slots__ = ("done", "item", "key", "leads", "result", "settled")

    def __init__(self, item: T, key: Hashable) -> None:
        self.item = item
        self.key = key
        #: Set when the batch holding this call is over, or when it is this call's turn to
        #: run the next batch (``leads``).
        self.done = threading.Event()
        self.leads = False
        self.settled = False
        self.result: R | None = None


class Grouped(Generic[T, R]):
    """Runs ``many`` over the calls of concurrent callers (see the module's text).

    ``many(items)`` makes all of them in one statement and returns one result per item, in
    order; ``one(item)`` makes one alone (a batch of one, and a call whose batch failed).
    ``key(item)`` names what a call touches: two calls with the same key never share a batch
    (the second goes in a later one, and sees the first as done, as one after the other).
    At most ``limit`` calls per batch: each size is a statement of its own for the server.
    """

    def __init__(
        self,
        many: Callable[[Sequence[T]], Sequence[R]],
        one: Callable[[T], R],
        key: Callable[[T], Hashable],
        *,
        limit: int = 32,
        concurrency: int = 2,
    ) -> None:
        self._many = many
        self._one = one
        self._key = key
        self._limit = limit
        self._concurrency = concurrency
        self._start()

    def _start(self) -> None:
        self._forks = forks()
        self._lock = threading.Lock()
        #: Calls waiting for a batch (not yet in one), in arrival order.
        self._queue: list[_Call[T, R]] = []
        self._running = 0  # batches under way (their leaders have not handed over yet)

    def __call__(self, item: T) -> R:
        if self._forks != forks():  # inherited through fork: the parent's batches are not ours
            self._start()
        me: _Call[T, R] = _Call(item, self._key(item))
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
        return self._one(item)  # our batch failed: alone

    def _lead(self, me: _Call[T, R]) -> None:
        """Run one batch (ours, then the queue's oldest calls), then hand the lead over to the
        oldest call still waiting."""
        with self._lock:
            batch, later, keys = [me], [], {me.key}
            for call in self._queue:
                if len(batch) < self._limit and call.key not in keys:
                    batch.append(call)
                    keys.add(call.key)
                else:
                    later.append(call)
            self._queue = later
        try:
            if len(batch) == 1:  # ours alone: its error is ours, raised after the hand-over
                me.result, me.settled = self._one(me.item), True
            else:
                for call, result in zip(batch, self._many([c.item for c in batch]), strict=True):
                    call.result, call.settled = result, True
        except Exception:
            if len(batch) == 1:
                raise
            # Unsettled, each call of the batch runs alone and meets its own error, if any.
        finally:
            with self._lock:
                following = self._queue.pop(0) if self._queue else None
                if following is not None:
                    following.leads = True
                else:
                    self._running -= 1
            for call in batch[1:]:
                call.done.set()
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
