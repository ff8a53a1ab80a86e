"""The Store contract, run on every implementation: MemoryStore, SQLiteStore and the Django ORM store.

Each test is one behaviour the bot relies on (dedup, windows, statuses that never downgrade, a
status before its row, memory, usage, ledger, key-value), asserted through the protocol only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import (
    ChangeEvent,
    ErrorInfo,
    InboundMessage,
    MemoryStore,
    Pricing,
    SQLiteStore,
    StatusUpdate,
)
from eki_whatsapp.store import LedgerEntry, LogEntry, Store, UsageRecord
from eki_whatsapp_django import DjangoStore

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
BUSINESS = "106540352242922"


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("django", marks=pytest.mark.django_db(transaction=True))]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        made: Store = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "store.sqlite3")
    else:
        made = DjangoStore()
    assert isinstance(made, Store)
    yield made
    made.close()


def inbound(
    message_id: str = "wamid.IN1",
    *,
    provider: Any = "meta",
    sender: str = "16505551234",
    recipient: str = BUSINESS,
    text: str = "hello",
    at: datetime = T0,
) -> InboundMessage:
    return InboundMessage(
        provider=provider,
        id=message_id,
        sender=sender,
        recipient=recipient,
        type="text",
        timestamp=at,
        raw={"id": message_id, "text": {"body": text}, "when": at},
        text=text,
        profile_name="Sheena",
    )


def status(
    message_id: str,
    value: str,
    *,
    provider: Any = "meta",
    at: datetime = T0,
    error: int | None = None,
    category: str | None = None,
) -> StatusUpdate:
    return StatusUpdate(
        provider=provider,
        message_id=message_id,
        status=value,
        timestamp=at,
        raw={"id": message_id, "status": value},
        recipient="16505551234",
        errors=(ErrorInfo(code=error, message="Re-engagement message", details="window closed"),)
        if error
        else (),
        pricing=Pricing(category=category) if category else None,
    )


def outbound(
    message_id: str | None = "wamid.OUT1", *, status_: str = "accepted", to: str = "16505551234"
) -> LogEntry:
    return LogEntry(
        direction="out",
        provider="meta",
        type="text",
        message_id=message_id,
        sender=BUSINESS,
        recipient=to,
        text="hi there",
        status=status_,
        timestamp=T0,
        reason="reply-channel",
        raw={"messages": [{"id": message_id}]},
        extra={"part": 1, "parts": 2},
    )


# --- inbound log and dedup ---------------------------------------------------------------------------
def test_inbound_is_logged_once(store: Store) -> None:
    assert store.record_inbound(inbound()) is True
    assert store.record_inbound(inbound()) is False
    assert len(store.list_log()) == 1
    row = store.get_message("meta", "wamid.IN1")
    assert row is not None
    assert (row.direction, row.sender, row.recipient, row.text, row.status) == (
        "in",
        "16505551234",
        BUSINESS,
        "hello",
        "received",
    )
    assert row.user == "16505551234"
    assert row.raw["text"] == {"body": "hello"}
    assert row.timestamp == T0
    assert row.created_at is not None and row.created_at.tzinfo is not None


def test_same_id_on_the_other_provider_is_another_message(store: Store) -> None:
    assert store.record_inbound(inbound("X1", provider="meta"))
    assert store.record_inbound(inbound("X1", provider="twilio"))
    assert len(store.list_log()) == 2


def test_concurrent_duplicates_are_recorded_once(store: Store) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        results.append(store.record_inbound(inbound("wamid.RACE")))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_missing_message_is_none(store: Store) -> None:
    assert store.get_message("meta", "nope") is None


# --- 24-hour window ----------------------------------------------------------------------------------
def test_window_follows_the_latest_message_and_never_goes_back(store: Store) -> None:
    store.record_inbound(inbound("A", at=T0))
    store.record_inbound(inbound("B", at=T0 + timedelta(hours=2)))
    store.record_inbound(inbound("C", at=T0 + timedelta(hours=1)))  # late delivery of an older one
    assert store.last_inbound_at("meta", BUSINESS, "16505551234") == T0 + timedelta(hours=2)


def test_window_is_per_provider_business_and_user(store: Store) -> None:
    store.record_inbound(inbound("A", recipient="111", at=T0))
    store.record_inbound(inbound("B", recipient="222", at=T0 + timedelta(hours=3)))
    assert store.last_inbound_at("meta", "111", "16505551234") == T0
    assert store.last_inbound_at("meta", None, "16505551234") == T0 + timedelta(hours=3)
    assert store.last_inbound_at("twilio", None, "16505551234") is None
    assert store.last_inbound_at("meta", "111", "someone-else") is None


def test_a_duplicate_does_not_move_the_window(store: Store) -> None:
    store.record_inbound(inbound("A", at=T0))
    store.record_inbound(inbound("A", at=T0 + timedelta(hours=5)))
    assert store.last_inbound_at("meta", BUSINESS, "16505551234") == T0


# --- statuses ---------------------------------------------------------------------------------------
def test_statuses_move_forward_only(store: Store) -> None:
    store.log_outbound(outbound())
    assert store.record_status(status("wamid.OUT1", "sent"))
    assert store.record_status(status("wamid.OUT1", "read", at=T0 + timedelta(seconds=9)))
    assert store.record_status(status("wamid.OUT1", "delivered", at=T0 + timedelta(seconds=5)))
    row = store.get_message("meta", "wamid.OUT1")
    assert row is not None and row.status == "read"
    assert [s.status for s in store.statuses("meta", "wamid.OUT1")] == ["sent", "delivered", "read"]


def test_a_repeated_status_is_a_duplicate(store: Store) -> None:
    store.log_outbound(outbound())
    assert store.record_status(status("wamid.OUT1", "delivered")) is True
    assert store.record_status(status("wamid.OUT1", "delivered")) is False
    assert len(store.statuses("meta", "wamid.OUT1")) == 1


def test_failure_keeps_the_error_and_pricing_sets_the_category(store: Store) -> None:
    store.log_outbound(outbound("wamid.A"))
    store.log_outbound(outbound("wamid.B"))
    store.record_status(status("wamid.A", "failed", error=131047))
    store.record_status(status("wamid.B", "delivered", category="utility"))
    failed = store.get_message("meta", "wamid.A")
    assert failed is not None
    assert (failed.status, failed.error_code, failed.error_message) == ("failed", 131047, "window closed")
    assert store.statuses("meta", "wamid.A")[0].error_code == 131047
    delivered = store.get_message("meta", "wamid.B")
    assert delivered is not None and delivered.category == "utility"


def test_a_status_before_its_row_is_applied_when_the_row_is_written(store: Store) -> None:
    assert store.record_status(status("wamid.EARLY", "delivered"))
    row_id = store.log_outbound(outbound("wamid.EARLY"))
    row = store.get_message("meta", "wamid.EARLY")
    assert row is not None
    assert row.id == row_id
    assert row.status == "delivered"


def test_an_early_failure_brings_its_error_to_the_row(store: Store) -> None:
    store.record_status(status("wamid.EARLY", "failed", error=131047))
    store.log_outbound(outbound("wamid.EARLY"))
    row = store.get_message("meta", "wamid.EARLY")
    assert row is not None and (row.status, row.error_code) == ("failed", 131047)


def test_status_of_an_unknown_message_is_kept(store: Store) -> None:
    assert store.record_status(status("wamid.ELSEWHERE", "read"))
    assert [s.status for s in store.statuses("meta", "wamid.ELSEWHERE")] == ["read"]
    assert store.get_message("meta", "wamid.ELSEWHERE") is None


# --- outbound rows, changes, listing ---------------------------------------------------------------
def test_outbound_row_keeps_every_field(store: Store) -> None:
    row_id = store.log_outbound(outbound())
    row = store.get_message("meta", "wamid.OUT1")
    assert row is not None
    assert row.id == row_id
    assert (row.direction, row.recipient, row.user, row.reason, row.text) == (
        "out",
        "16505551234",
        "16505551234",
        "reply-channel",
        "hi there",
    )
    assert dict(row.extra) == {"part": 1, "parts": 2}
    assert row.raw == {"messages": [{"id": "wamid.OUT1"}]}


def test_failed_sends_without_id_are_all_kept(store: Store) -> None:
    first = store.log_outbound(outbound(None, status_="failed"))
    second = store.log_outbound(outbound(None, status_="failed"))
    assert first != second
    assert [r.status for r in store.list_log(direction="out")] == ["failed", "failed"]


def test_change_events_are_logged(store: Store) -> None:
    store.record_change(
        ChangeEvent(
            provider="meta",
            field="message_template_status_update",
            timestamp=T0,
            raw={"event": "APPROVED", "message_template_name": "order_update"},
            account_id="102290129340398",
        )
    )
    [row] = store.list_log()
    assert row.type == "event:message_template_status_update"
    assert row.raw["event"] == "APPROVED"


def test_list_log_filters_newest_first_with_a_limit(store: Store) -> None:
    store.record_inbound(inbound("A", sender="111"))
    store.record_inbound(inbound("B", sender="222", provider="twilio"))
    store.log_outbound(outbound("C", to="111"))
    store.record_inbound(inbound("D", sender="111"))
    assert [r.message_id for r in store.list_log()] == ["D", "C", "B", "A"]
    assert [r.message_id for r in store.list_log(limit=2)] == ["D", "C"]
    assert [r.message_id for r in store.list_log(user="111")] == ["D", "C", "A"]
    assert [r.message_id for r in store.list_log(provider="twilio")] == ["B"]
    assert [r.message_id for r in store.list_log(direction="out")] == ["C"]
    assert [r.message_id for r in store.list_log(user="111", direction="in")] == ["D", "A"]


# --- memory, usage, ledger, key-value ---------------------------------------------------------------
def test_memory_round_trips_and_is_a_copy(store: Store) -> None:
    assert store.load_memory("meta:111") == []
    items = [{"role": "user", "content": "hola"}, {"role": "assistant", "content": "¡hola! 👋"}]
    store.save_memory("meta:111", items)
    loaded = store.load_memory("meta:111")
    assert loaded == items
    loaded.append({"role": "user", "content": "changed"})
    assert store.load_memory("meta:111") == items
    store.save_memory("meta:111", items[:1])
    assert store.load_memory("meta:111") == items[:1]


def test_usage_filters_by_user_and_time(store: Store) -> None:
    store.record_usage(UsageRecord("111", "gpt-4.1-mini", 100, 20, 5, Decimal("0.000123"), T0))
    store.record_usage(UsageRecord("222", "gpt-4.1-mini", 50, 10, 0, None, T0 + timedelta(hours=1)))
    store.record_usage(UsageRecord("111", "gpt-4.1", 10, 1, 0, Decimal("0.5"), T0 + timedelta(hours=2)))
    assert [u.model for u in store.usage(user="111")] == ["gpt-4.1-mini", "gpt-4.1"]
    assert [u.user for u in store.usage(since=T0 + timedelta(minutes=30))] == ["222", "111"]
    first = store.usage()[0]
    assert (first.prompt_tokens, first.completion_tokens, first.cached_tokens) == (100, 20, 5)
    assert first.cost == Decimal("0.000123")
    assert store.usage()[1].cost is None


def test_ledger_dedups_and_filters_by_month(store: Store) -> None:
    november = LedgerEntry(
        "meta", "wamid.1", "utility", T0, user="111", market="BR", amount=Decimal("0.0080")
    )
    assert store.add_ledger(november) is True
    assert store.add_ledger(november) is False
    assert store.add_ledger(LedgerEntry("meta", "wamid.1", "utility", T0, source="status", billable=True))
    december = LedgerEntry("twilio", "SM1", None, datetime(2026, 12, 1, tzinfo=timezone.utc), note="no price")
    assert store.add_ledger(december)
    assert [e.source for e in store.ledger(month="2026-11")] == ["send", "status"]
    [only] = store.ledger(month="2026-12")
    assert (only.amount, only.note, only.billable) == (None, "no price", None)
    assert store.ledger(month="2026-11")[0].amount == Decimal("0.0080")
    assert len(store.ledger()) == 3


def test_values_are_json_and_overwritten(store: Store) -> None:
    assert store.get_value("router", "breaker") is None
    store.set_value("router", "breaker", {"meta": {"open_until": "2026-11-20T12:00:00+00:00"}, "n": [1, 2]})
    assert store.get_value("router", "breaker") == {
        "meta": {"open_until": "2026-11-20T12:00:00+00:00"},
        "n": [1, 2],
    }
    store.set_value("router", "breaker", 3)
    assert store.get_value("router", "breaker") == 3
    assert store.get_value("other", "breaker") is None
