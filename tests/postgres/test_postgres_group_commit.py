"""Group commit in the PostgreSQL store: the messages that threads of one process record at the
same moment share one statement and one commit, and each caller still gets its own outcome
(its row's id, a duplicate's 0, its own error) only once its row is committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest

from eki_whatsapp.errors import UnstorableValue
from eki_whatsapp.store._postgres_batch import Grouped
from eki_whatsapp.store.base import Lease
from eki_whatsapp.store.postgres import PostgresStore
from eki_whatsapp.testing.store_contract import T0, inbound, status

LEASE = Lease("host:1:test", T0 + timedelta(minutes=5))


def wait_until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for other threads to get somewhere (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class Recorder:
    """Writes that record how they were grouped; a write of ``"a"`` alone waits for ``release``."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.release = threading.Event()
        self.batches: list[list[str]] = []
        self.alone: list[str] = []
        self.fail_on = fail_on

    def one(self, item: str) -> str:
        if item == "a":
            self.release.wait(10)
        self.alone.append(item)
        if item == self.fail_on:
            raise ValueError(f"cannot write {item}")
        return item.upper()

    def many(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        if self.fail_on in items:
            raise ValueError("the batch failed")
        return [item.upper() for item in items]


def queue_behind_a_slow_write(
    recorder: Recorder, items: list[str], key: Callable[[str], str] = lambda item: item
) -> list[Future[str]]:
    """Start ``items[0]``, ``"a"`` (which waits for ``recorder.release``), queue the others behind it,
    then let it finish: the writes of the queued ones are one batch (or more, by key)."""
    writer: Grouped[str, str] = Grouped(recorder.many, recorder.one, key=key, concurrency=1)
    pool = ThreadPoolExecutor(len(items))
    futures = [pool.submit(writer, items[0])]
    wait_until(lambda: writer._running, "the first write to start")
    futures += [pool.submit(writer, item) for item in items[1:]]
    wait_until(lambda: len(writer._queue) == len(items) - 1, "the others to queue")
    recorder.release.set()
    pool.shutdown(wait=True)
    return futures


def test_writes_made_during_another_are_made_together_and_each_caller_gets_its_own_result() -> None:
    recorder = Recorder()
    futures = queue_behind_a_slow_write(recorder, ["a", "b", "c", "d"])
    assert [f.result() for f in futures] == ["A", "B", "C", "D"]
    assert recorder.alone == ["a"]
    assert recorder.batches == [["b", "c", "d"]]


def test_two_writes_of_one_key_never_share_a_batch() -> None:
    recorder = Recorder()
    futures = queue_behind_a_slow_write(recorder, ["a", "b1", "c", "b2"], key=lambda item: item[0])
    assert [f.result() for f in futures] == ["A", "B1", "C", "B2"]
    assert recorder.batches == [["b1", "c"]]
    assert recorder.alone == ["a", "b2"]  # the second b after the first, alone


def test_a_failed_batch_is_written_again_one_by_one_and_only_the_culprit_sees_an_error() -> None:
    recorder = Recorder(fail_on="c")
    futures = queue_behind_a_slow_write(recorder, ["a", "b", "c", "d"])
    assert [f.result() for f in futures if f is not futures[2]] == ["A", "B", "D"]
    with pytest.raises(ValueError, match="cannot write c"):
        futures[2].result()
    assert recorder.batches == [["b", "c", "d"]]
    assert sorted(recorder.alone) == ["a", "b", "c", "d"]


def test_a_write_does_not_wait_for_a_slow_batch_while_another_may_run() -> None:
    recorder = Recorder()
    writer: Grouped[str, str] = Grouped(recorder.many, recorder.one, key=lambda item: item)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(writer, "a")
        wait_until(lambda: writer._running == 1, "the first write to start")
        assert writer("b") == "B"  # alone, while "a" still waits
        assert not slow.done()
        recorder.release.set()
        assert slow.result() == "A"


def test_a_write_alone_raises_its_own_error_and_the_next_write_still_runs() -> None:
    writer: Grouped[str, str] = Grouped(
        lambda items: list(items), lambda item: item if item != "bad" else 1 / 0, key=lambda item: item
    )
    with pytest.raises(ZeroDivisionError):
        writer("bad")
    assert writer("good") == "good"


# --- on the server ----------------------------------------------------------------------------


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(pg_url)
    yield store
    store.close()


def hold_messages(pg_url: str, store: PostgresStore, message_ids: list[str]) -> psycopg.Connection:
    """Another session inserting ``message_ids``, uncommitted: a write of one of them waits."""
    conn = psycopg.connect(pg_url.split("?", 1)[0], options=f"-c search_path={store.schema}")
    for message_id in message_ids:
        conn.execute(
            "INSERT INTO message_log (direction, provider, message_id, type, created_at, updated_at) "
            "VALUES ('in', 'meta', %s, 'text', now(), now())",
            (message_id,),
        )
    return conn


def record_behind_held_messages(
    pg_url: str, store: PostgresStore, messages: list[str], texts: dict[str, str] | None = None
) -> list[Future[str | None]]:
    """Record ``messages`` from threads of their own, the first two (one per batch that may be
    under way) blocked by another session until the others are queued behind them: those are
    then recorded together."""
    held = hold_messages(pg_url, store, messages[:2])
    pool = ThreadPoolExecutor(len(messages))

    def record(message_id: str) -> str | None:
        text = (texts or {}).get(message_id, "hello")
        return store.record_work(inbound(message_id, text=text, sender=f"+1555{message_id[-3:]}"), LEASE)

    futures = [pool.submit(record, m) for m in messages[:2]]
    wait_until(lambda: store._inbound._running == 2, "the first two inserts to start")
    futures += [pool.submit(record, m) for m in messages[2:]]
    wait_until(lambda: len(store._inbound._queue) == len(messages) - 2, "the others to queue")
    held.rollback()
    held.close()
    pool.shutdown(wait=True)
    return futures


def logged(store: PostgresStore) -> list[str]:
    with store._conn() as conn:
        return [r[0] for r in conn.execute("SELECT message_id FROM message_log ORDER BY id")]


def test_messages_recorded_together_each_get_their_own_work(pg_url: str, store: PostgresStore) -> None:
    messages = [f"wamid.G{i:03d}" for i in range(6)]
    futures = record_behind_held_messages(pg_url, store, messages)
    work = [f.result() for f in futures]
    assert all(work) and len(set(work)) == len(messages)
    for message_id, work_id in zip(messages, work, strict=True):
        item = store.get_work(work_id or "")
        assert item is not None and item.entry is not None and item.entry.message_id == message_id
        assert item.lease_owner == LEASE.owner and item.state == "pending"
    assert sorted(logged(store)) == messages


def test_a_message_delivered_twice_at_once_is_new_only_once(pg_url: str, store: PostgresStore) -> None:
    messages = ["wamid.D000", "wamid.D009", "wamid.D001", "wamid.D001", "wamid.D002", "wamid.D001"]
    work = [f.result() for f in record_behind_held_messages(pg_url, store, messages)]
    new = [m for m, w in zip(messages, work, strict=True) if w is not None]
    # Which delivery of D001 is the new one depends on which of the two batches that may run
    # at once takes it first; there is one.
    assert sorted(new) == ["wamid.D000", "wamid.D001", "wamid.D002", "wamid.D009"]
    assert sorted(logged(store)) == ["wamid.D000", "wamid.D001", "wamid.D002", "wamid.D009"]


def test_a_message_the_server_refuses_fails_alone_and_the_others_of_its_batch_are_recorded(
    pg_url: str, store: PostgresStore
) -> None:
    messages = [f"wamid.P{i:03d}" for i in range(5)]
    futures = record_behind_held_messages(pg_url, store, messages, texts={"wamid.P002": "nul \x00 byte"})
    with pytest.raises(UnstorableValue):
        futures[2].result()
    assert all(f.result() for f in futures if f is not futures[2])
    assert sorted(logged(store)) == [m for m in messages if m != "wamid.P002"]


def test_many_threads_recording_at_once_record_every_message_once(store: PostgresStore) -> None:
    messages = [f"wamid.T{i:04d}" for i in range(400)]
    with ThreadPoolExecutor(16) as pool:
        work = list(pool.map(lambda m: store.record_work(inbound(m), LEASE), messages + messages[:100]))
    assert len({w for w in work if w}) == len(messages)
    assert sum(1 for w in work if w is None) == 100
    assert sorted(logged(store)) == messages


# --- the outcomes of handled work, written together ----------------------------------------


def test_outcomes_written_together_leave_each_row_as_one_call_each_would(store: PostgresStore) -> None:
    done, retried, dead, stolen = (store.record_work(inbound(f"wamid.O{i}"), LEASE) or "" for i in range(4))
    status_work = store.record_work(status("wamid.O0", "delivered"), LEASE) or ""
    retry_at = T0 + timedelta(minutes=1)
    changed = store.finish_works(
        [
            (done, LEASE.owner, {}),
            (retried, LEASE.owner, {"error": "boom", "retry_at": retry_at}),
            (dead, LEASE.owner, {"error": "boom"}),
            (stolen, "someone-else", {}),
            (status_work, LEASE.owner, {}),
            ("m999999", LEASE.owner, {}),
            ("not a work id", LEASE.owner, {}),
        ]
    )
    assert changed == [True, True, True, False, True, False, False]
    states = {w: store.get_work(w) for w in (done, retried, dead, stolen, status_work)}
    assert {w: (i.state, i.lease_owner) for w, i in states.items() if i} == {
        done: ("handled", None),
        retried: ("failed", None),
        dead: ("dead", None),
        stolen: ("pending", LEASE.owner),
        status_work: ("handled", None),
    }
    assert states[retried] is not None and states[retried].next_attempt_at == retry_at
    assert states[retried].last_error == "boom"


def test_work_finished_twice_in_one_batch_is_changed_by_the_first_outcome_only(store: PostgresStore) -> None:
    work = store.record_work(inbound("wamid.TWICE"), LEASE) or ""
    retry_at = T0 + timedelta(minutes=1)
    changed = store.finish_works(
        [(work, LEASE.owner, {"error": "boom", "retry_at": retry_at}), (work, LEASE.owner, {})]
    )
    assert changed == [True, False]  # the first one ended the lease the second one names
    item = store.get_work(work)
    assert item is not None and item.state == "failed"


def test_many_outcomes_at_once_are_all_written(store: PostgresStore) -> None:
    work = [store.record_work(inbound(f"wamid.M{i:03d}"), LEASE) or "" for i in range(150)]
    assert store.finish_works([(w, LEASE.owner, {}) for w in work]) == [True] * 150
    assert store.pending_work() == []


# --- a user's states, read together ------------------------------------------------------------


def test_states_read_together_give_each_caller_its_own_users_values(store: PostgresStore) -> None:
    store.set_value("eki.optout", "+1555001", {"opted_out": True})
    store.set_value("eki.handoff", "+1555001", {"mode": "human"})
    store.set_value("eki.handoff", "+1555002", {"mode": "human"})
    store.set_value("eki.other", "+1555003", [1, 2])
    requests = [
        ("+1555001", ("eki.optout", "eki.handoff")),
        ("+1555002", ("eki.optout",)),  # its handoff state is not asked for
        ("+1555003", ("eki.optout", "eki.handoff", "eki.other")),
        ("+1555001", ("eki.handoff",)),
        ("+1555999", ("eki.optout", "eki.handoff")),
    ]
    together = store._read_many_values(requests)
    assert together == [
        {"eki.optout": {"opted_out": True}, "eki.handoff": {"mode": "human"}},
        {},
        {"eki.other": [1, 2]},
        {"eki.handoff": {"mode": "human"}},
        {},
    ]
    assert together == [store._read_values(r) for r in requests]


def test_many_threads_reading_states_at_once_each_get_their_own(store: PostgresStore) -> None:
    users = [f"+1555{i:04d}" for i in range(60)]
    for i, user in enumerate(users):
        if i % 3:
            store.set_value("eki.optout", user, {"n": i})
    with ThreadPoolExecutor(16) as pool:
        read = list(pool.map(lambda u: store.get_values(u, ("eki.optout", "eki.handoff")), users * 3))
    expected = [{"eki.optout": {"n": i}} if i % 3 else {} for i in range(60)]
    assert read == expected * 3


def test_a_child_forked_while_batches_are_under_way_records_its_own_messages(
    pg_url: str, store: PostgresStore
) -> None:
    import multiprocessing

    held = hold_messages(pg_url, store, ["wamid.F000", "wamid.F001"])
    pool = ThreadPoolExecutor(2)
    parent = [pool.submit(store.record_work, inbound(m), LEASE) for m in ("wamid.F000", "wamid.F001")]
    wait_until(lambda: store._inbound._running == 2, "the parent's two inserts to start")
    child = multiprocessing.get_context("fork").Process(target=_record_from_child, args=(store,))
    child.start()
    child.join(30)
    held.rollback()
    held.close()
    assert child.exitcode == 0  # it did not wait for its parent's batches
    assert all(f.result() for f in parent)
    pool.shutdown()
    assert sorted(logged(store)) == ["wamid.F000", "wamid.F001", "wamid.FCHILD"]


def _record_from_child(store: PostgresStore) -> None:
    assert store.record_work(inbound("wamid.FCHILD"), LEASE) is not None
    store.close()
