"""Counters shared by processes: N processes sending against one free allowance count it
exactly, on a SQLite file and on PostgreSQL (real processes, not threads)."""

from __future__ import annotations

import multiprocessing
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp.costs import Costs
from eki_whatsapp.store import Store, open_store

PROCESSES, SENDS, ALLOWANCE = 4, 300, 1000
AT = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _send(url: str, start: Any, free: multiprocessing.Queue[int]) -> None:
    """One process: SENDS marketing messages priced and recorded by the cost ledger."""
    store = open_store(url)
    costs = Costs(store, free_allowance={"meta": ALLOWANCE})
    start.wait()
    entries = [
        entry
        for n in range(SENDS)
        for entry in costs.record_send(
            "meta", [f"wamid.{os.getpid()}.{n}"], "16505551234", "marketing", at=AT
        )
    ]
    # The allowance is a discount entry beside the real price (issue 18): count this process's.
    mine = {entry.message_id for entry in entries}
    free.put(sum(e.source == "allowance" and e.message_id in mine for e in store.ledger(month="2026-11")))
    store.close()


def _run_processes(url: str) -> list[int]:
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing shared but the store
    start = ctx.Barrier(PROCESSES)
    free: multiprocessing.Queue[int] = ctx.Queue()
    workers = [ctx.Process(target=_send, args=(url, start, free)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    counts = [free.get(timeout=180) for _ in workers]
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
def test_processes_sharing_a_free_allowance_count_it_exactly(store_url: str) -> None:
    open_store(store_url).close()  # the schema exists before the processes race
    counts = _run_processes(store_url)
    assert sum(counts) == ALLOWANCE  # 4 × 300 sends, 1000 free: not one more, none lost
    store: Store = open_store(store_url)
    try:
        ledger = store.ledger(month="2026-11")
        # Every send keeps its real price; the allowance is a discount entry beside 500 of them.
        assert sum(e.source == "send" for e in ledger) == PROCESSES * SENDS
        assert all(e.billable for e in ledger if e.source == "send")
        assert sum(e.source == "allowance" for e in ledger) == ALLOWANCE
        assert Costs(store).report("2026-11").line("meta", "marketing").free == ALLOWANCE
        assert Costs(store, free_allowance={"meta": ALLOWANCE}).allowance_left("meta", "2026-11") == 0
    finally:
        store.close()
