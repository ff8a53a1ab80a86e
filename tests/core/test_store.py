"""What only the embedded stores have to get right: SQLite files that outlive the process (and
older versions of the library), and ``WHATSAPP_STORE_URL``. The behaviour every store shares is
the store contract (``test_store_contract.py``)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from eki_whatsapp import InboundMessage, Pricing, SQLiteStore, StatusUpdate
from eki_whatsapp.store import open_store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def inbound(mid: str) -> InboundMessage:
    return InboundMessage(
        provider="meta",
        id=mid,
        sender="5511",
        recipient="106",
        type="text",
        timestamp=T0,
        raw={"id": mid},
        text="hi",
    )


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db" / "bot.sqlite3"
    s = SQLiteStore(path)
    s.record_inbound(inbound("persist"))
    s.close()
    again = SQLiteStore(path)
    assert not again.record_inbound(inbound("persist"))
    assert again.get_message("meta", "persist") is not None
    again.close()


def test_a_file_from_before_status_categories_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # status_log as version 0.1 wrote it
        db.execute(
            "CREATE TABLE status_log (provider TEXT NOT NULL, message_id TEXT NOT NULL, "
            "status TEXT NOT NULL, timestamp TEXT NOT NULL, error_code INTEGER, error_message TEXT, "
            "raw TEXT, PRIMARY KEY (provider, message_id, status))"
        )
        db.execute(
            "INSERT INTO status_log VALUES ('meta', 'wamid.OLD', 'sent', ?, NULL, NULL, '{}')",
            (T0.isoformat(),),
        )
    db.close()
    store = SQLiteStore(path)
    delivered = StatusUpdate(
        provider="meta",
        message_id="wamid.OLD",
        status="delivered",
        timestamp=T0,
        raw={},
        pricing=Pricing(category="utility"),
    )
    assert store.record_status(delivered)
    assert [(s.status, s.category) for s in store.statuses("meta", "wamid.OLD")] == [
        ("sent", None),
        ("delivered", "utility"),
    ]
    store.close()


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eki_whatsapp import ConfigError, MemoryStore

    monkeypatch.chdir(tmp_path)
    assert isinstance(open_store("memory://"), MemoryStore)
    rel = open_store("sqlite:///rel.sqlite3")
    assert isinstance(rel, SQLiteStore) and (tmp_path / "rel.sqlite3").exists()
    rel.close()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.sqlite3")
    assert isinstance(absolute, SQLiteStore) and (tmp_path / "abs.sqlite3").exists()
    absolute.close()
    with pytest.raises(ConfigError, match="WHATSAPP_STORE_URL"):
        open_store("redis://x")


def test_outcomes_finished_together_each_get_their_own_answer(tmp_path: Path) -> None:
    # finish_work commits the outcomes of concurrent workers together (group commit): each
    # caller still learns whether its own update took, and every one is on disk after.
    import threading
    from datetime import timedelta

    from eki_whatsapp.store.base import Lease

    store = SQLiteStore(tmp_path / "bot.sqlite3")
    lease = Lease("me", datetime.now(timezone.utc) + timedelta(minutes=5))
    ids = [store.record_work(inbound(f"m{i}"), lease) for i in range(40)]
    answers: dict[int, bool] = {}
    start = threading.Barrier(8)

    def finish(worker: int) -> None:
        start.wait()
        for i in range(worker, 40, 8):
            work_id = ids[i]
            assert work_id is not None
            owner = "someone else" if i % 10 == 3 else "me"  # a lease taken over meanwhile
            answers[i] = store.finish_work(work_id, owner)

    threads = [threading.Thread(target=finish, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {i: i % 10 != 3 for i in range(40)}
    store.close()
    again = SQLiteStore(tmp_path / "bot.sqlite3")
    states = [again.get_message("meta", f"m{i}") for i in range(40)]
    assert [s.handling if s else None for s in states] == [
        "pending" if i % 10 == 3 else "handled" for i in range(40)
    ]
    again.close()


def test_the_unread_created_index_of_older_files_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:  # as versions before 0.2 wrote it
        db.execute("CREATE INDEX message_log_created ON message_log(created_at)")
    db.close()
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    db.close()
    assert "message_log_created" not in names


def test_writes_in_a_batch_commit_together_and_each_stays_atomic(tmp_path: Path) -> None:
    # A send's log row, ledger entry and receipt go to disk in one commit (store.batch()); a
    # write that fails inside leaves the others in place.
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    other = sqlite3.connect(tmp_path / "bot.sqlite3")
    with store.batch():
        store.set_value("sent", "k1", {"id": 1})
        assert store.record_inbound(inbound("in-batch"))
        with pytest.raises(Exception, match=r"cannot hold a value|surrogate"):
            store.set_value("sent", "bad", "\ud800")
        # nothing is visible to another connection before the batch commits
        assert other.execute("SELECT count(*) FROM kv").fetchone() == (0,)
    assert other.execute("SELECT key FROM kv").fetchall() == [("k1",)]
    assert store.get_message("meta", "in-batch") is not None
    with pytest.raises(RuntimeError), store.batch():
        store.set_value("sent", "k2", {"id": 2})
        raise RuntimeError("the caller failed")
    assert store.get_value("sent", "k2") is None  # the whole batch rolled back
    other.close()
    store.close()


def test_a_send_log_row_refused_in_a_batch_leaves_the_batch_s_other_writes(tmp_path: Path) -> None:
    # Inside a batch a log row is written without a savepoint of its own (one statement undoes
    # itself): a row refused as a duplicate fails alone, the ledger entry and receipt commit.
    from eki_whatsapp.errors import StoreError
    from eki_whatsapp.store import LogEntry

    store = SQLiteStore(tmp_path / "bot.sqlite3")
    row = LogEntry(direction="out", provider="meta", type="text", message_id="wamid.DUP", status="accepted")
    store.log_outbound(row)
    with store.batch():
        store.set_value("sent", "k1", {"id": 1})
        with pytest.raises(StoreError, match="UNIQUE"):
            store.log_outbound(row)
        store.set_value("sent", "k2", {"id": 2})
    assert store.get_value("sent", "k1") == {"id": 1} and store.get_value("sent", "k2") == {"id": 2}
    assert [e.message_id for e in store.list_log(direction="out")] == ["wamid.DUP"]
    store.close()


def test_the_ledger_and_key_value_space_of_a_new_file_are_one_b_tree_each(tmp_path: Path) -> None:
    # WITHOUT ROWID: a send's ledger entry and receipt each change one page fewer.
    SQLiteStore(tmp_path / "bot.sqlite3").close()
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        tables = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE name IN ('kv', 'ledger')"))
    db.close()
    assert {name: sql.rstrip().endswith("WITHOUT ROWID") for name, sql in tables.items()} == {
        "kv": True,
        "ledger": True,
    }


def test_a_file_with_rowid_ledger_and_key_values_reads_and_writes_alike(tmp_path: Path) -> None:
    from decimal import Decimal

    from eki_whatsapp.store import LedgerEntry

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the layout of files made before WITHOUT ROWID
        db.execute(
            "CREATE TABLE ledger (provider TEXT NOT NULL, message_id TEXT NOT NULL, source TEXT NOT NULL, "
            "category TEXT, at TEXT NOT NULL, month TEXT NOT NULL, user TEXT, market TEXT, "
            "pricing_model TEXT, billable INTEGER, amount TEXT, currency TEXT NOT NULL, note TEXT, "
            "PRIMARY KEY (provider, message_id, source))"
        )
        db.execute(
            "CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
            "PRIMARY KEY (namespace, key))"
        )
    db.close()
    store = SQLiteStore(path)
    assert store.add_ledger(LedgerEntry("meta", "wamid.1", "service", T0, amount=Decimal("0")))
    assert not store.add_ledger(LedgerEntry("meta", "wamid.1", "service", T0, amount=Decimal("0")))
    assert store.add_ledger(LedgerEntry("meta", "wamid.1", "service", T0, source="status"))
    assert [e.source for e in store.ledger(month="2026-11")] == ["send", "status"]
    assert store.compare_and_set("sent", "k", None, {"id": 1}) and store.get_value("sent", "k") == {"id": 1}
    store.close()


def test_logging_an_inbound_message_moves_its_window_in_the_same_statement(tmp_path: Path) -> None:
    # The ack's whole write is one INSERT: the message_log_window trigger moves the window
    # forward only, and a notification row (no sender) moves none.
    from datetime import timedelta

    from eki_whatsapp import ChangeEvent

    store = SQLiteStore(tmp_path / "bot.sqlite3")
    later = InboundMessage(
        provider="meta", id="later", sender="5511", recipient="106", type="text",
        timestamp=T0 + timedelta(hours=1), raw={}, text="hi",
    )  # fmt: skip
    assert store.record_inbound(later)
    assert store.record_inbound(inbound("earlier"))  # T0: delivered late
    assert store.last_inbound_at("meta", "106", "5511") == T0 + timedelta(hours=1)
    store.record_change(
        ChangeEvent(provider="meta", field="account_update", timestamp=T0, raw={}, account_id="106")
    )
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        assert db.execute("SELECT provider, business, user FROM windows").fetchall() == [
            ("meta", "106", "5511")
        ]
    db.close()
    store.close()
