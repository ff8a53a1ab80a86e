"""The store rulebook on plain values: what a status does to a row, windows, stored values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eki_whatsapp import ErrorInfo, InboundMessage, Pricing, StatusUpdate
from eki_whatsapp.store.base import StatusRecord
from eki_whatsapp.store.rules import (
    RowStatus,
    advances,
    json_copy,
    merge_status,
    merge_statuses,
    status_changes,
    status_record,
    window_key,
    window_moves,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def rec(
    status: str, code: int | None = None, text: str | None = None, category: str | None = None
) -> StatusRecord:
    return StatusRecord("meta", "wamid.1", status, T0, code, text, category=category)


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        (None, "accepted", True),
        ("accepted", "sent", True),
        ("sent", "delivered", True),
        ("delivered", "read", True),
        ("read", "delivered", False),
        ("read", "read", False),
        ("read", "failed", True),
        ("failed", "read", False),
        ("received", "read", True),  # a read receipt of an inbound message (Twilio)
    ],
)
def test_a_status_moves_forward_only(current: str | None, new: str, moves: bool) -> None:
    assert advances(current, new) is moves


def test_a_status_that_moves_the_row_brings_its_error() -> None:
    row = merge_status(RowStatus("sent"), rec("failed", 131047, "window closed"))
    assert row == RowStatus("failed", 131047, "window closed", None)


def test_a_status_that_does_not_move_the_row_leaves_the_error() -> None:
    row = RowStatus("failed", 1, "from the send")
    assert merge_status(row, rec("delivered", 2, "late")) == row


def test_the_first_pricing_category_fills_the_row_whatever_the_status() -> None:
    row = merge_statuses(
        RowStatus("read"), [rec("sent", category="marketing"), rec("delivered", category="utility")]
    )
    assert row == RowStatus("read", category="marketing")
    assert (
        merge_status(RowStatus("sent", category="utility"), rec("read", category="marketing")).category
        == "utility"
    )


def test_changes_name_only_what_moved() -> None:
    assert status_changes(RowStatus("read"), [rec("delivered")]) == {}
    assert status_changes(RowStatus("sent"), [rec("read")]) == {"status": "read"}
    assert status_changes(RowStatus("sent", 1, "x"), [rec("failed", 2, None)]) == {
        "status": "failed",
        "error_code": 2,
        "error_message": None,
    }
    assert status_changes(RowStatus("read"), [rec("sent", category="utility")]) == {"category": "utility"}


def test_merging_is_idempotent() -> None:
    statuses = [rec("sent", category="utility"), rec("failed", 131026, "undeliverable"), rec("read")]
    once = merge_statuses(RowStatus("accepted"), statuses)
    assert merge_statuses(once, statuses) == once


def test_a_status_record_keeps_the_first_error_and_the_pricing_category() -> None:
    update = StatusUpdate(
        provider="meta",
        message_id="wamid.1",
        status="failed",
        timestamp=T0,
        raw={"id": "wamid.1"},
        errors=(ErrorInfo(code=131047, message="Re-engagement message", details="window closed"),),
        pricing=Pricing(category="marketing"),
    )
    record = status_record(update)
    assert (record.error_code, record.error_message, record.category) == (
        131047,
        "window closed",
        "marketing",
    )


def test_a_window_is_per_provider_business_and_user_and_moves_forward() -> None:
    message = InboundMessage(
        provider="twilio", id="SM1", sender="5511", recipient="14155238886", type="text", timestamp=T0, raw={}
    )
    assert window_key(message) == ("twilio", "14155238886", "5511")
    assert window_moves(None, T0)
    assert window_moves(T0, T0 + timedelta(seconds=1))
    assert not window_moves(T0, T0)
    assert not window_moves(T0, T0 - timedelta(hours=1))


def test_stored_values_are_json() -> None:
    assert json_copy({"n": (1, 2), "at": T0}) == {"n": [1, 2], "at": str(T0)}
    assert json_copy(None) is None
