"""Claims on PostgreSQL from several processes at once: every piece of work, and every outbox
send, is claimed by exactly one of them (``FOR UPDATE SKIP LOCKED`` for batches, a row-locked
UPDATE for single claims)."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from eki_whatsapp.store.base import Lease
from eki_whatsapp.store.postgres import PostgresStore
from eki_whatsapp.testing.store_contract import T0, inbound, queued_send

PROCESSES, WORK = 4, 240
pytestmark = pytest.mark.slow


def _sweep(url: str, owner: str, start: Any, out: multiprocessing.Queue[list[str]]) -> None:
    """One process: claim due work in small batches until none is left."""
    store = PostgresStore(url)
    claimed: list[str] = []
    start.wait()
    while True:
        items = store.claim_due(Lease(owner, T0 + timedelta(minutes=5)), now=T0, max_attempts=3, limit=7)
        if not items:
            break
        claimed.extend(item.id for item in items)
        for item in items:
            assert store.finish_work(item.id, owner)
    out.put(claimed)
    store.close()


def _claim_each(
    url: str, owner: str, ids: list[str], start: Any, out: multiprocessing.Queue[list[str]]
) -> None:
    """One process: try to claim every piece of work by its id."""
    store = PostgresStore(url)
    start.wait()
    lease = Lease(owner, T0 + timedelta(minutes=5))
    out.put([work_id for work_id in ids if store.claim_work(work_id, lease, now=T0) is not None])
    store.close()


def _send(url: str, owner: str, start: Any, out: multiprocessing.Queue[list[str]]) -> None:
    """One process: claim due outbox sends in small batches until none is left."""
    store = PostgresStore(url)
    claimed: list[str] = []
    start.wait()
    while True:
        items = store.claim_sends(Lease(owner, T0 + timedelta(minutes=5)), now=T0, limit=5)
        if not items:
            break
        for item in items:
            assert item.id is not None and store.finish_send(item.id, owner, state="sent")
            claimed.append(item.id)
    out.put(claimed)
    store.close()


def _run(target: Any, args: list[tuple[Any, ...]]) -> list[list[str]]:
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing shared but the database
    start = ctx.Barrier(len(args))
    out: multiprocessing.Queue[list[str]] = ctx.Queue()
    workers = [ctx.Process(target=target, args=(*a, start, out)) for a in args]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    return results


def _record(url: str) -> list[str]:
    store = PostgresStore(url)
    try:
        ids = [store.record_work(inbound(f"wamid.C{n}")) for n in range(WORK)]
    finally:
        store.close()
    assert None not in ids
    return [i for i in ids if i is not None]


def test_sweepers_in_several_processes_claim_each_piece_of_work_once(pg_url: str) -> None:
    ids = _record(pg_url)
    results = _run(_sweep, [(pg_url, f"sweeper-{n}") for n in range(PROCESSES)])
    counts = Counter(work_id for claimed in results for work_id in claimed)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    store = PostgresStore(pg_url)
    try:
        assert store.pending_work() == []
    finally:
        store.close()


def test_claims_of_the_same_work_from_several_processes_have_one_winner(pg_url: str) -> None:
    ids = _record(pg_url)
    results = _run(_claim_each, [(pg_url, f"worker-{n}", ids) for n in range(PROCESSES)])
    counts = Counter(work_id for claimed in results for work_id in claimed)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    store = PostgresStore(pg_url)
    try:
        items = [store.get_work(work_id) for work_id in ids]
        assert all(item is not None and item.attempts == 1 for item in items)
    finally:
        store.close()


def test_outbox_sends_claimed_from_several_processes_go_once(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        ids = [store.enqueue_send(*queued_send()) for _ in range(WORK // 2)]
    finally:
        store.close()
    results = _run(_send, [(pg_url, f"sender-{n}") for n in range(PROCESSES)])
    counts = Counter(send_id for claimed in results for send_id in claimed)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
