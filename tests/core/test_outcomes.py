"""The outcomes of work handled on the bot's threads, written together (handling.Outcomes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from eki_whatsapp.handling import Outcomes
from eki_whatsapp.store.base import WorkOutcome


class CountingStore:
    """A store that only records the outcomes written to it, and by which thread."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.writers: set[str] = set()

    def finish_works(self, outcomes: list[tuple[str, str, WorkOutcome]]) -> list[bool]:
        self.written += [work_id for work_id, _, _ in outcomes]
        self.writers.add(threading.current_thread().name)
        return [True] * len(outcomes)


def wait_until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for another thread to get somewhere (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_an_outcome_is_written_by_the_writer_thread_without_a_drain() -> None:
    # A bot that serves and is never drained still records what it handled (else every piece
    # of work would be handled again once its lease expired).
    store = CountingStore()
    outcomes = Outcomes(store, age=0.01)
    outcomes.add("w1", "me", {"error": None})
    wait_until(lambda: store.written == ["w1"], "the writer thread")
    outcomes.add("w2", "me", {"error": None})  # the thread waits for the next one too
    wait_until(lambda: store.written == ["w1", "w2"], "the writer thread again")
    assert store.writers == {"eki-whatsapp-outcomes"}
    outcomes.close()


def test_the_outcome_that_fills_the_queue_writes_it_at_once() -> None:
    store = CountingStore()
    outcomes = Outcomes(store, size=3, age=3600)
    for n in range(3):
        outcomes.add(f"w{n}", "me", {"error": None})
    assert store.written == ["w0", "w1", "w2"]  # by the thread that added the third, before add returned
    outcomes.close()


def test_close_writes_what_is_queued_and_later_outcomes_at_once() -> None:
    store = CountingStore()
    outcomes = Outcomes(store, age=3600)
    outcomes.add("w1", "me", {"error": None})
    outcomes.close()
    assert store.written == ["w1"]
    outcomes.add("w2", "me", {"error": None})  # a handler that finished after close()
    assert store.written == ["w1", "w2"]
