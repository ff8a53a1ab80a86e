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
