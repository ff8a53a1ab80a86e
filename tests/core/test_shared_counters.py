"""Counters shared by processes: N processes spending one allowance count it exactly, on a SQLite
file and on PostgreSQL (real processes, not threads)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp.store import Store, open_store

PROCESSES, SENDS, ALLOWANCE = 4, 150, 500


def _spend(url: str, start: Any, granted: multiprocessing.Queue[int]) -> None:
    """One process: try SENDS times to take one free message of the allowance."""
    store = open_store(url)
    start.wait()
    free = sum(
        store.increment("costs", "allowance:meta:2026-11", limit=ALLOWANCE) is not None for _ in range(SENDS)
    )
    granted.put(free)
    store.close()


def _run_processes(url: str) -> list[int]:
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing shared but the store
    start = ctx.Barrier(PROCESSES)
    granted: multiprocessing.Queue[int] = ctx.Queue()
    workers = [ctx.Process(target=_spend, args=(url, start, granted)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    counts = [granted.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    return counts


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.sqlite3"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.slow
def test_processes_sharing_an_allowance_count_it_exactly(store_url: str) -> None:
    open_store(store_url).close()  # the schema exists before the processes race
    counts = _run_processes(store_url)
    assert sum(counts) == ALLOWANCE  # 4 × 150 tries, 500 free: none lost, none over
    store: Store = open_store(store_url)
    try:
        assert store.get_value("costs", "allowance:meta:2026-11") == ALLOWANCE
    finally:
        store.close()
