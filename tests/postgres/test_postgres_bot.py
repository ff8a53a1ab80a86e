"""A bot on PostgreSQL handles events durably: work acked by a process that died is handled once
by the next one (the SQLite scenario of tests/core/test_durable.py, on the real server)."""

from __future__ import annotations

from eki_whatsapp.store.postgres import PostgresStore

from ..core.test_durable import LostRunner, make_bot, replies, says
from ..routing.fakes import FakeProvider


def test_work_acked_by_a_process_that_died_is_handled_once_by_the_next(pg_url: str) -> None:
    meta = FakeProvider("meta", "106540352242922")
    first = make_bot(PostgresStore(pg_url), meta, whatsapp_handler_lease_seconds=0.001)
    first.runner = lost = LostRunner()
    for n in range(3):
        says(first, f"m{n}", f"wamid.P{n}")
    assert len(lost.lost) == 3 and replies(meta) == []
    row = first.store.get_message("meta", "wamid.P0")
    assert row is not None and row.handling == "pending"
    first.store.close()
    second = make_bot(PostgresStore(pg_url), meta)
    says(second, "m3", "wamid.P3")
    assert second.drain()
    assert sorted(replies(meta)) == ["echo: m0", "echo: m1", "echo: m2", "echo: m3"]
    assert second.store.pending_work() == []
    row = second.store.get_message("meta", "wamid.P0")
    assert row is not None and row.handling == "handled" and row.attempts == 2
    for n in range(3):  # redeliveries are duplicates: nothing answered again
        says(second, f"m{n}", f"wamid.P{n}")
    assert second.drain() and len(replies(meta)) == 4
    second.close()
