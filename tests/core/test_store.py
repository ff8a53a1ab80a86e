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
