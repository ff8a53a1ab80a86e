"""The store rulebook on plain values: what a status does to a row, windows, stored values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eki_whatsapp import ErrorInfo, InboundMessage, Pricing, StatusUpdate
from eki_whatsapp.store.base import StatusRecord
from eki_whatsapp.store.rules import (
    StatusFacts,
    advances,
    json_copy,
    status_changes,
    status_facts,
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
    assert status_changes("sent", None, [rec("failed", 131047, "window closed")]) == {
        "status": "failed",
        "error_code": 131047,
        "error_message": "window closed",
    }


def test_a_status_that_does_not_move_the_row_leaves_the_error() -> None:
    assert status_changes("failed", None, [rec("delivered", 2, "late")]) == {}
    assert status_changes("read", None, [rec("delivered")]) == {}


def test_the_error_comes_whole_from_the_status() -> None:
    assert status_changes("sent", None, [rec("failed", 2, None)]) == {
        "status": "failed",
        "error_code": 2,
        "error_message": None,
    }


def test_the_first_pricing_category_fills_the_row_whatever_the_status() -> None:
    statuses = [rec("sent", category="marketing"), rec("delivered", category="utility")]
    assert status_changes("read", None, statuses) == {"category": "marketing"}
    assert status_changes("sent", "utility", [rec("read", category="marketing")]) == {"status": "read"}


def test_statuses_merge_in_arrival_order() -> None:
    statuses = [rec("sent", category="utility"), rec("failed", 131026, "undeliverable"), rec("read")]
    assert status_changes("accepted", None, statuses) == {
        "status": "failed",
        "error_code": 131026,
        "error_message": "undeliverable",
        "category": "utility",
    }


def test_merging_again_changes_nothing() -> None:
    statuses = [rec("sent", category="utility"), rec("failed", 131026, "undeliverable"), rec("read")]
    assert status_changes("failed", "utility", statuses) == {}


def test_a_status_says_its_first_error_and_pricing_category() -> None:
    update = StatusUpdate(
        provider="meta",
        message_id="wamid.1",
        status="failed",
        timestamp=T0,
        raw={"id": "wamid.1"},
        errors=(ErrorInfo(code=131047, message="Re-engagement message", details="window closed"),),
        pricing=Pricing(category="marketing"),
    )
    assert status_facts(update) == StatusFacts("failed", 131047, "window closed", "marketing")
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


# --- values a store cannot hold (rules.storable) ------------------------------------------------
def test_storable_text_replaces_nul_and_lone_surrogates_and_keeps_pairs() -> None:
    from eki_whatsapp.store.rules import storable_text

    assert storable_text("plain") == "plain"
    assert storable_text("a\x00b") == "a\ufffdb"
    assert storable_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert storable_text("\ud83d\ude00 ok") == "\U0001f600 ok"  # a pair is the character it encodes
    assert storable_text("olá 😀") == "olá 😀"


def test_storable_cleans_typed_fields_and_raw_data_and_says_what() -> None:
    from eki_whatsapp.store.rules import storable

    status = StatusUpdate(
        provider="meta",
        message_id="wamid.\x00",
        status="failed",
        timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
        raw={"errors": [{"code": 10**20}], "x": float("inf"), "\ud800": "v"},
        errors=(ErrorInfo(code=10**20, message="m\ud800"),),
    )

    cleaned, replaced = storable(status)

    assert cleaned.message_id == "wamid.\ufffd"
    assert cleaned.errors[0].code is None and cleaned.errors[0].message == "m\ufffd"
    assert cleaned.raw == {"errors": [{"code": 10**20}], "x": "inf", "\ufffd": "v"}  # JSON holds any int
    assert len(replaced) == 3  # text, a number out of range, a number that is not finite
    assert storable(cleaned) == (cleaned, [])  # cleaning twice changes nothing


def test_storable_keeps_data_nested_too_deep_as_its_json_text() -> None:
    from eki_whatsapp.store.rules import MAX_DEPTH, storable

    deep: list[object] = []
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    message = InboundMessage(
        provider="meta",
        id="wamid.D",
        sender="1",
        recipient="2",
        type="text",
        timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
        raw={"deep": deep},
    )

    cleaned, replaced = storable(message)

    text = cleaned.raw["deep"]
    for _ in range(MAX_DEPTH - 2):  # the levels kept as data
        text = text[0]
    assert isinstance(text, str) and text.startswith("[[") and replaced
