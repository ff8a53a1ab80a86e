"""The memory and SQLite stores behave the same."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import InboundMessage, SQLiteStore
from eki_whatsapp.store import LedgerEntry, LogEntry, UsageRecord, open_store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def inbound(mid: str, user: str = "5511", at: datetime = T0, business: str = "106") -> InboundMessage:
    return InboundMessage("meta", mid, user, business, "text", at, {"id": mid}, text="hi")


def test_inbound_dedup_and_window(store: Any) -> None:
    assert store.record_inbound(inbound("m1", at=T0))
    assert not store.record_inbound(inbound("m1", at=T0))
    assert store.record_inbound(inbound("m2", at=T0 + timedelta(hours=2)))
    assert store.record_inbound(inbound("m0", at=T0 - timedelta(hours=5)))  # late, older message
    assert store.last_inbound_at("meta", "106", "5511") == T0 + timedelta(hours=2)
    assert store.last_inbound_at("meta", None, "5511") == T0 + timedelta(hours=2)
    assert store.last_inbound_at("meta", "999", "5511") is None
    assert store.last_inbound_at("twilio", None, "5511") is None
    assert [r.message_id for r in store.list_log()] == ["m0", "m2", "m1"]


def test_list_log_filters(store: Any) -> None:
    store.record_inbound(inbound("a", user="1"))
    store.record_inbound(inbound("b", user="2"))
    store.log_outbound(
        LogEntry(direction="out", provider="twilio", type="text", message_id="SM1", recipient="1")
    )
    assert [r.message_id for r in store.list_log(user="1")] == ["SM1", "a"]
    assert [r.message_id for r in store.list_log(direction="in")] == ["b", "a"]
    assert [r.message_id for r in store.list_log(provider="twilio")] == ["SM1"]
    assert len(store.list_log(limit=1)) == 1


def test_outbound_row_keeps_reason_attempts_extra(store: Any) -> None:
    row_id = store.log_outbound(
        LogEntry(
            direction="out",
            provider="meta",
            type="text",
            message_id="wamid.O",
            recipient="5511",
            text="hello",
            status="accepted",
            attempts=2,
            reason="failover:ProviderDown",
            extra={"part": 1},
        )
    )
    assert row_id > 0
    row = store.get_message("meta", "wamid.O")
    assert (row.reason, row.attempts, row.extra, row.user, row.text) == (
        "failover:ProviderDown",
        2,
        {"part": 1},
        "5511",
        "hello",
    )


def test_memory_usage_ledger_kv(store: Any) -> None:
    store.save_memory("u1", [{"role": "user", "content": "hola"}])
    store.save_memory("u2", [{"role": "user", "content": "oi"}])
    items = store.load_memory("u1")
    items.append({"role": "assistant"})  # a copy: the store is not changed
    assert store.load_memory("u1") == [{"role": "user", "content": "hola"}]
    assert store.load_memory("nobody") == []
    store.record_usage(
        UsageRecord(user="u1", model="m", prompt_tokens=10, completion_tokens=5, cost=Decimal("0.01"))
    )
    store.record_usage(UsageRecord(user="u2", model="m", prompt_tokens=1))
    assert [u.prompt_tokens for u in store.usage(user="u1")] == [10]
    assert store.usage(user="u1")[0].cost == Decimal("0.01")
    entry = LedgerEntry(provider="meta", message_id="w1", category="utility", at=T0, amount=Decimal("0.0080"))
    assert store.add_ledger(entry)
    assert not store.add_ledger(entry)
    unknown = LedgerEntry(
        provider="twilio", message_id="s1", category="marketing", at=T0 + timedelta(days=31)
    )
    assert store.add_ledger(unknown)
    assert [e.amount for e in store.ledger(month="2026-11")] == [Decimal("0.0080")]
    assert store.ledger(month="2026-12")[0].amount is None
    store.set_value("breaker", "meta", {"open_until": 5})
    assert store.get_value("breaker", "meta") == {"open_until": 5}
    assert store.get_value("breaker", "twilio") is None


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db" / "bot.sqlite3"
    s = SQLiteStore(path)
    s.record_inbound(inbound("persist"))
    s.close()
    again = SQLiteStore(path)
    assert not again.record_inbound(inbound("persist"))
    assert again.get_message("meta", "persist") is not None
    again.close()


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
        open_store("postgres://x")
