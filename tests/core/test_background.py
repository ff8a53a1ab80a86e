"""The bot's own handler threads (eki_whatsapp.background.WorkerThreads)."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from eki_whatsapp.background import WorkerThreads


def test_drain_waits_for_every_item_and_the_threads_stay_within_size() -> None:
    pool = WorkerThreads(3)
    done: list[int] = []
    names: set[str] = set()
    lock = threading.Lock()

    def work(i: int) -> None:
        time.sleep(0.001)
        with lock:
            done.append(i)
            names.add(threading.current_thread().name)

    for i in range(60):
        pool.submit(work, i)
    assert pool.drain(time.monotonic() + 30)
    assert sorted(done) == list(range(60))
    assert 1 <= len(names) <= 3
    pool.shutdown()


def test_a_blocked_item_does_not_hold_the_next_one() -> None:
    # A handler waiting on the network (the agent's model call) must not delay another user's.
    pool = WorkerThreads(4)
    release = threading.Event()
    second_ran = threading.Event()
    pool.submit(release.wait, 30)
    pool.submit(second_ran.set)
    assert second_ran.wait(10)
    release.set()
    assert pool.drain(time.monotonic() + 30)
    pool.shutdown()


def test_a_failing_item_is_logged_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    pool = WorkerThreads(2)
    ran = threading.Event()

    def boom() -> None:
        raise RuntimeError("handler bug")

    pool.submit(boom)
    pool.submit(ran.set)
    assert pool.drain(time.monotonic() + 30)
    assert ran.is_set()
    assert "handler bug" in caplog.text
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(ran.set)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="fork")
def test_a_forked_child_runs_work_on_threads_of_its_own() -> None:
    # gunicorn --preload forks a process whose parent already ran handlers.
    pool = WorkerThreads(2)
    pool.submit(time.sleep, 0)
    assert pool.drain(time.monotonic() + 30)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when its own threads ran the work
        ran = threading.Event()
        pool.submit(ran.set)
        os._exit(0 if ran.wait(10) and pool.drain(time.monotonic() + 10) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    pool.shutdown()


def test_a_burst_of_quick_items_runs_on_the_thread_that_gathered_it() -> None:
    # The thread woken for the first item waits (gather) while the rest arrive; the thread it
    # wakes for the rest gathers too, and finds them done: one thread ran them all.
    pool = WorkerThreads(4, gather=0.5)
    names: list[str] = []
    for _ in range(50):
        pool.submit(lambda: names.append(threading.current_thread().name))
    assert pool.drain(time.monotonic() + 30)
    assert len(names) == 50 and len(set(names)) == 1
    pool.shutdown()


def test_items_that_wait_spread_over_the_threads() -> None:
    # A handler waiting on the network (a model call) must not hold the items queued behind it:
    # each of four waits for the others, which passes only if all four run at once.
    pool = WorkerThreads(4)
    barrier = threading.Barrier(4, timeout=10)
    passed: list[bool] = []
    for _ in range(4):
        pool.submit(lambda: passed.append(barrier.wait() >= 0))
    assert pool.drain(time.monotonic() + 30)
    assert passed == [True] * 4
    pool.shutdown()
