"""Circuit breakers shared by processes through the store (docs/routing.md): failures count
together, a breaker one process opens is seen open by the others within the sync time, and a
half-open breaker lets one probe through for all of them. Real processes, on a SQLite file and
on PostgreSQL; times are given to the breakers, so nothing here waits on a clock."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp.routing.breaker import CircuitBreaker
from eki_whatsapp.store import open_store

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
SYNC = timedelta(seconds=5)
COOLDOWN = timedelta(seconds=60)
pytestmark = pytest.mark.slow


def _serve(url: str, conn: Connection) -> None:
    """One process with its own breaker for "meta" on the shared store, driven over a pipe."""
    store = open_store(url)
    breaker = CircuitBreaker(3, COOLDOWN, store=store, name="meta", sync=SYNC)
    while True:
        command, at = conn.recv()
        if command == "stop":
            break
        if command == "failure":
            breaker.failure(at)
        elif command == "probe":
            breaker.before_attempt(at)
        elif command == "success":
            breaker.success()
        conn.send(breaker.available(at) if command == "available" else breaker.state(at))
    store.close()


class Process:
    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing shared but the store
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(url, child))
        self.proc.start()

    def __call__(self, command: str, at: datetime = T0) -> Any:
        self.conn.send((command, at))
        assert self.conn.poll(60), f"{command}: no answer"
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send(("stop", T0))
        self.proc.join(30)
        assert self.proc.exitcode == 0


@pytest.fixture(params=["sqlite", "postgres"])
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Process]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/shared.sqlite3"
    else:
        url = str(request.getfixturevalue("pg_url"))
    open_store(url).close()  # the schema exists before the processes start
    started = [Process(url) for _ in range(3)]
    yield started
    for process in started:
        process.stop()


def test_failures_of_several_processes_count_together(processes: list[Process]) -> None:
    a, b, c = processes
    assert a("failure") == "closed" and b("failure") == "closed"
    assert c("failure") == "open"  # the third failure of the three processes: the threshold


def test_a_breaker_one_process_opens_is_open_for_the_others_within_the_sync_time(
    processes: list[Process],
) -> None:
    a, b, c = processes
    assert all(p("available") for p in processes)  # each has read the shared state at T0
    for _ in range(3):
        a("failure", T0 + timedelta(seconds=1))
    assert a("available", T0 + timedelta(seconds=1)) is False  # its own change: at once
    assert b("available", T0 + timedelta(seconds=2)) is True  # a local view, not read yet...
    assert b("available", T0 + SYNC) is False  # ...read within the sync time: skipped
    assert c("state", T0 + SYNC) == "open"


def test_a_half_open_breaker_lets_one_probe_through_for_every_process(processes: list[Process]) -> None:
    a, b, c = processes
    for _ in range(3):
        a("failure")
    later = T0 + COOLDOWN + timedelta(seconds=1)
    assert a("available", later) and b("available", later)  # half-open everywhere
    assert a("probe", later) == "half-open"  # a's send is the probe...
    assert b("available", later + SYNC) is False  # ...so b does not send one too
    assert a("success", later + SYNC) == "closed"  # the probe worked
    assert b("available", later + 2 * SYNC) is True
    assert c("state", later + 2 * SYNC) == "closed"
