"""The store contract: the behaviour every :class:`~eki_whatsapp.store.Store` must have, as pytest
tests. The memory, SQLite and Django stores run it; so can yours, with one import::

    import pytest
    from eki_whatsapp.testing.store_contract import StoreContract


    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            store = MyStore(tmp_path / "bot.db")  # a fresh, empty store for every test
            yield store
            store.close()

Every test of the contract then runs on ``MyStore``. Each test is one behaviour the bot relies on
(dedup, windows, statuses that never go back, a status before its row, memory, usage, ledger,
key-value), asserted through the protocol only; the rules behind them are written once in
:mod:`eki_whatsapp.store.rules`.

The contract is made of sections (:class:`LogContract`, :class:`StatusContract`,
:class:`WindowContract`, :class:`ValuesContract`, :class:`CounterContract`,
:class:`HandlingContract`); :class:`StoreContract` is all of them. A store
that implements only part of the protocol can subclass the sections it has, and new parts of the
protocol come with a new section added to :class:`StoreContract`.

Needs pytest (imported here, not by :mod:`eki_whatsapp.testing`); no framework, no database
server. The base classes are not collected on their own: only your ``Test...`` subclass is.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from ..errors import StoreError
from ..events import ChangeEvent, ErrorInfo, InboundMessage, Pricing, StatusUpdate
from ..store.base import Lease, LedgerEntry, LogEntry, OutboxItem, Store, UsageRecord, read_values

__all__ = [
    "BUSINESS",
    "T0",
    "USER",
    "CounterContract",
    "HandlingContract",
    "LogContract",
    "OutboxContract",
    "StatusContract",
    "StoreContract",
    "ValuesContract",
    "WindowContract",
    "inbound",
    "outbound",
    "status",
]

#: The time every contract event happens at (give or take a few hours).
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
#: The business number the contract's messages are sent to.
BUSINESS = "106540352242922"
#: The user the contract's messages come from.
USER = "16505551234"


# --- builders ------------------------------------------------------------------------------------
def inbound(
    message_id: str = "wamid.IN1",
    *,
    provider: Any = "meta",
    sender: str = USER,
    recipient: str = BUSINESS,
    text: str = "hello",
    at: datetime = T0,
) -> InboundMessage:
    """An inbound text message (its raw data holds a datetime, as a parser's may)."""
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
    error_text: str | None = "window closed",  # None: the error's message is its only text
    category: str | None = None,
) -> StatusUpdate:
    """A status event; ``error`` adds a provider error, ``category`` the provider's pricing."""
    return StatusUpdate(
        provider=provider,
        message_id=message_id,
        status=value,
        timestamp=at,
        raw={"id": message_id, "status": value},
        recipient=USER,
        errors=(ErrorInfo(code=error, message="Re-engagement message", details=error_text),) if error else (),
        pricing=Pricing(category=category) if category else None,
    )


def outbound(
    message_id: str | None = "wamid.OUT1",
    *,
    status_: str = "accepted",
    to: str = USER,
    category: str | None = None,
    timestamp: datetime = T0,
) -> LogEntry:
    """The log row of a message the bot sent."""
    return LogEntry(
        direction="out",
        provider="meta",
        type="text",
        message_id=message_id,
        sender=BUSINESS,
        recipient=to,
        text="hi there",
        status=status_,
        timestamp=timestamp,
        reason="reply-channel",
        category=category,
        raw={"messages": [{"id": message_id}]},
        extra={"part": 1, "parts": 2},
    )


def _row(store: Store, message_id: str) -> tuple[Any, ...]:
    row = store.get_message("meta", message_id)
    assert row is not None, f"no log row for {message_id}"
    return row.status, row.error_code, row.error_message, row.category


# --- the contract --------------------------------------------------------------------------------
class _Contract:
    """What every section shares: its tests take a ``store`` fixture (a fresh, empty store) that
    the subclass defines (or a ``conftest.py`` does)."""

    # The sections here are not collected on their own; a subclass elsewhere is (unless it says
    # ``__test__ = False`` itself).
    __test__ = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__ and cls.__module__ != __name__:
            cls.__test__ = True


class LogContract(_Contract):
    """The message log: inbound dedup, outbound rows, change events, listing."""

    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    def test_inbound_is_logged_once(self, store: Store) -> None:
        assert store.record_inbound(inbound()) is True
        assert store.record_inbound(inbound()) is False
        assert len(store.list_log()) == 1
        row = store.get_message("meta", "wamid.IN1")
        assert row is not None
        assert (row.direction, row.sender, row.recipient, row.text, row.status) == (
            "in",
            USER,
            BUSINESS,
            "hello",
            "received",
        )
        assert row.user == USER
        assert row.raw["text"] == {"body": "hello"}
        assert row.timestamp == T0
        assert dict(row.extra) == {"profile_name": "Sheena"}
        assert row.created_at is not None and row.created_at.tzinfo is not None

    def test_same_id_on_the_other_provider_is_another_message(self, store: Store) -> None:
        assert store.record_inbound(inbound("X1", provider="meta"))
        assert store.record_inbound(inbound("X1", provider="twilio"))
        assert len(store.list_log()) == 2

    def test_concurrent_duplicates_are_recorded_once(self, store: Store) -> None:
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

    def test_missing_message_is_none(self, store: Store) -> None:
        assert store.get_message("meta", "nope") is None

    def test_outbound_row_keeps_every_field(self, store: Store) -> None:
        row_id = store.log_outbound(dataclasses.replace(outbound(), attempts=2))
        row = store.get_message("meta", "wamid.OUT1")
        assert row is not None
        assert row.id == row_id
        assert (row.direction, row.recipient, row.user, row.reason, row.text, row.attempts) == (
            "out",
            USER,
            USER,
            "reply-channel",
            "hi there",
            2,
        )
        assert dict(row.extra) == {"part": 1, "parts": 2}
        assert row.raw == {"messages": [{"id": "wamid.OUT1"}]}

    def test_a_logged_message_id_is_not_logged_again(self, store: Store) -> None:
        store.log_outbound(outbound("wamid.ONCE"))
        with pytest.raises(StoreError):
            store.log_outbound(outbound("wamid.ONCE"))
        assert store.record_inbound(inbound("wamid.ONCE")) is False  # the same message, too
        assert [r.message_id for r in store.list_log()] == ["wamid.ONCE"]

    def test_failed_sends_without_id_are_all_kept(self, store: Store) -> None:
        first = store.log_outbound(outbound(None, status_="failed"))
        second = store.log_outbound(outbound(None, status_="failed"))
        assert first != second
        assert [r.status for r in store.list_log(direction="out")] == ["failed", "failed"]

    def test_change_events_are_logged(self, store: Store) -> None:
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
        assert row.recipient == "102290129340398"

    def test_list_log_filters_newest_first_with_a_limit(self, store: Store) -> None:
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

    def test_raw_data_and_extra_come_back_as_json(self, store: Store) -> None:
        store.record_inbound(inbound("wamid.J"))
        row = store.get_message("meta", "wamid.J")
        assert row is not None and isinstance(row.raw["when"], str)  # a datetime, as text
        store.log_outbound(dataclasses.replace(outbound("wamid.K"), extra={"parts": (1, 2)}))
        out = store.get_message("meta", "wamid.K")
        assert out is not None and dict(out.extra) == {"parts": [1, 2]}

    def test_times_come_back_aware_in_utc(self, store: Store) -> None:
        naive = datetime(2026, 11, 20, 12, 0)  # taken to be UTC
        paris = datetime(2026, 11, 20, 13, 0, tzinfo=timezone(timedelta(hours=1)))
        store.log_outbound(outbound("wamid.NAIVE", timestamp=naive))
        store.log_outbound(outbound("wamid.PARIS", timestamp=paris))
        store.record_inbound(inbound("wamid.IN", at=paris))
        store.record_status(status("wamid.PARIS", "sent", at=paris))
        rows = [store.get_message("meta", m) for m in ("wamid.NAIVE", "wamid.PARIS", "wamid.IN")]
        read_back = [
            *(row.timestamp if row is not None else None for row in rows),
            store.statuses("meta", "wamid.PARIS")[0].timestamp,
            store.last_inbound_at("meta", BUSINESS, USER),
        ]
        for when in read_back:
            assert when == T0 and when is not None and when.utcoffset() == timedelta(0)


class StatusContract(_Contract):
    """Statuses: kept once each, merged into their row by the rules, whatever the order."""

    def test_statuses_move_forward_only(self, store: Store) -> None:
        store.log_outbound(outbound())
        assert store.record_status(status("wamid.OUT1", "sent"))
        assert store.record_status(status("wamid.OUT1", "read", at=T0 + timedelta(seconds=9)))
        assert store.record_status(status("wamid.OUT1", "delivered", at=T0 + timedelta(seconds=5)))
        assert _row(store, "wamid.OUT1")[0] == "read"
        assert [s.status for s in store.statuses("meta", "wamid.OUT1")] == ["sent", "delivered", "read"]

    def test_a_repeated_status_is_a_duplicate(self, store: Store) -> None:
        store.log_outbound(outbound())
        assert store.record_status(status("wamid.OUT1", "delivered")) is True
        assert store.record_status(status("wamid.OUT1", "delivered")) is False
        assert len(store.statuses("meta", "wamid.OUT1")) == 1

    def test_failure_keeps_the_error_and_pricing_sets_the_category(self, store: Store) -> None:
        store.log_outbound(outbound("wamid.A"))
        store.log_outbound(outbound("wamid.B"))
        store.record_status(status("wamid.A", "failed", error=131047))
        store.record_status(status("wamid.B", "delivered", category="utility"))
        assert _row(store, "wamid.A") == ("failed", 131047, "window closed", None)
        assert store.statuses("meta", "wamid.A")[0].error_code == 131047
        assert _row(store, "wamid.B")[3] == "utility"
        assert store.statuses("meta", "wamid.B")[0].category == "utility"

    def test_a_failure_is_final(self, store: Store) -> None:
        store.log_outbound(outbound("wamid.F"))
        store.record_status(status("wamid.F", "failed", error=131026))
        store.record_status(status("wamid.F", "delivered", at=T0 + timedelta(seconds=1)))
        store.record_status(status("wamid.F", "read", at=T0 + timedelta(seconds=2)))
        assert _row(store, "wamid.F")[:2] == ("failed", 131026)

    def test_a_failed_send_is_not_revived_by_a_status(self, store: Store) -> None:
        failed = dataclasses.replace(outbound("wamid.X", status_="failed"), error_code=1, error_message="x")
        store.log_outbound(failed)
        store.record_status(status("wamid.X", "delivered"))
        assert _row(store, "wamid.X") == ("failed", 1, "x", None)

    def test_pricing_on_a_status_that_does_not_move_the_row_still_sets_the_category(
        self, store: Store
    ) -> None:
        store.log_outbound(outbound("wamid.P"))
        store.record_status(status("wamid.P", "read"))
        store.record_status(status("wamid.P", "sent", category="utility"))  # late, with pricing
        assert _row(store, "wamid.P") == ("read", None, None, "utility")

    def test_the_first_category_stays(self, store: Store) -> None:
        store.log_outbound(outbound("wamid.C1", category="utility"))
        store.record_status(status("wamid.C1", "sent", category="marketing"))
        assert _row(store, "wamid.C1")[3] == "utility"
        store.log_outbound(outbound("wamid.C2"))
        store.record_status(status("wamid.C2", "sent", category="marketing"))
        store.record_status(status("wamid.C2", "delivered", category="utility"))
        assert _row(store, "wamid.C2")[3] == "marketing"

    def test_a_status_before_its_row_is_applied_when_the_row_is_written(self, store: Store) -> None:
        assert store.record_status(status("wamid.EARLY", "delivered"))
        row_id = store.log_outbound(outbound("wamid.EARLY"))
        row = store.get_message("meta", "wamid.EARLY")
        assert row is not None
        assert row.id == row_id
        assert row.status == "delivered"

    def test_an_early_failure_brings_its_error_to_the_row(self, store: Store) -> None:
        store.record_status(status("wamid.EARLY", "failed", error=131047))
        store.log_outbound(outbound("wamid.EARLY"))
        assert _row(store, "wamid.EARLY")[:3] == ("failed", 131047, "window closed")

    def test_an_early_status_with_pricing_sets_the_category(self, store: Store) -> None:
        store.record_status(status("wamid.EARLY", "delivered", category="marketing"))
        store.record_status(status("wamid.NOPRICE", "delivered"))
        store.log_outbound(outbound("wamid.EARLY"))
        store.log_outbound(outbound("wamid.NOPRICE"))
        assert _row(store, "wamid.EARLY") == ("delivered", None, None, "marketing")
        assert _row(store, "wamid.NOPRICE") == ("delivered", None, None, None)

    @pytest.mark.parametrize(
        "events",
        [
            pytest.param(
                [("sent", None, "utility"), ("delivered", None, None), ("read", None, None)], id="in-order"
            ),
            pytest.param([("read", None, None), ("sent", None, "marketing")], id="pricing-late"),
            pytest.param(
                [("failed", 131047, None), ("sent", None, None)], id="error-replaces-the-sends-text"
            ),
            pytest.param(
                [("delivered", None, None), ("failed", 131026, "undeliverable")], id="failure-after"
            ),
        ],
    )
    def test_a_row_ends_the_same_whether_its_statuses_come_before_or_after_it(
        self, store: Store, events: list[tuple[str, int | None, str | None]]
    ) -> None:
        def deliver(message_id: str) -> None:
            for n, (value, error, category) in enumerate(events):
                at = T0 + timedelta(seconds=n)
                store.record_status(
                    status(message_id, value, at=at, error=error, error_text=None, category=category)
                )

        with_text = dataclasses.replace(outbound("wamid.BEFORE"), error_message="from the send")
        deliver("wamid.BEFORE")
        store.log_outbound(with_text)
        store.log_outbound(dataclasses.replace(with_text, message_id="wamid.AFTER"))
        deliver("wamid.AFTER")
        assert _row(store, "wamid.BEFORE") == _row(store, "wamid.AFTER")

    def test_status_of_an_unknown_message_is_kept(self, store: Store) -> None:
        assert store.record_status(status("wamid.ELSEWHERE", "read"))
        assert [s.status for s in store.statuses("meta", "wamid.ELSEWHERE")] == ["read"]
        assert store.get_message("meta", "wamid.ELSEWHERE") is None


class WindowContract(_Contract):
    """24-hour windows: the latest inbound per provider, business number and user."""

    def test_window_follows_the_latest_message_and_never_goes_back(self, store: Store) -> None:
        store.record_inbound(inbound("A", at=T0))
        store.record_inbound(inbound("B", at=T0 + timedelta(hours=2)))
        store.record_inbound(inbound("C", at=T0 + timedelta(hours=1)))  # late delivery of an older one
        assert store.last_inbound_at("meta", BUSINESS, USER) == T0 + timedelta(hours=2)

    def test_window_is_per_provider_business_and_user(self, store: Store) -> None:
        store.record_inbound(inbound("A", recipient="111", at=T0))
        store.record_inbound(inbound("B", recipient="222", at=T0 + timedelta(hours=3)))
        assert store.last_inbound_at("meta", "111", USER) == T0
        assert store.last_inbound_at("meta", None, USER) == T0 + timedelta(hours=3)
        assert store.last_inbound_at("twilio", None, USER) is None
        assert store.last_inbound_at("meta", "111", "someone-else") is None

    def test_a_duplicate_does_not_move_the_window(self, store: Store) -> None:
        store.record_inbound(inbound("A", at=T0))
        store.record_inbound(inbound("A", at=T0 + timedelta(hours=5)))
        assert store.last_inbound_at("meta", BUSINESS, USER) == T0


class ValuesContract(_Contract):
    """What the agent, the cost ledger and the router keep: memory, usage, ledger, key-value."""

    def test_memory_round_trips_and_is_a_copy(self, store: Store) -> None:
        assert store.load_memory("meta:111") == []
        items = [{"role": "user", "content": "hola"}, {"role": "assistant", "content": "¡hola! 👋"}]
        store.save_memory("meta:111", items)
        loaded = store.load_memory("meta:111")
        assert loaded == items
        loaded.append({"role": "user", "content": "changed"})
        items.append({"role": "user", "content": "changed too"})
        assert store.load_memory("meta:111") == items[:2]
        store.save_memory("meta:111", items[:1])
        assert store.load_memory("meta:111") == items[:1]

    def test_usage_filters_by_user_and_time(self, store: Store) -> None:
        store.record_usage(UsageRecord("111", "gpt-4.1-mini", 100, 20, 5, Decimal("0.000123"), T0))
        store.record_usage(UsageRecord("222", "gpt-4.1-mini", 50, 10, 0, None, T0 + timedelta(hours=1)))
        store.record_usage(UsageRecord("111", "gpt-4.1", 10, 1, 0, Decimal("0.5"), T0 + timedelta(hours=2)))
        assert [u.model for u in store.usage(user="111")] == ["gpt-4.1-mini", "gpt-4.1"]
        assert [u.user for u in store.usage(since=T0 + timedelta(minutes=30))] == ["222", "111"]
        first = store.usage()[0]
        assert (first.prompt_tokens, first.completion_tokens, first.cached_tokens) == (100, 20, 5)
        assert first.cost == Decimal("0.000123")
        assert first.at == T0
        assert store.usage()[1].cost is None

    def test_ledger_dedups_and_filters_by_month(self, store: Store) -> None:
        november = LedgerEntry(
            "meta", "wamid.1", "utility", T0, user="111", market="BR", amount=Decimal("0.0080")
        )
        assert store.add_ledger(november) is True
        assert store.add_ledger(november) is False
        assert store.add_ledger(LedgerEntry("meta", "wamid.1", "utility", T0, source="status", billable=True))
        december = LedgerEntry(
            "twilio", "SM1", None, datetime(2026, 12, 1, tzinfo=timezone.utc), note="no price"
        )
        assert store.add_ledger(december)
        assert [e.source for e in store.ledger(month="2026-11")] == ["send", "status"]
        [only] = store.ledger(month="2026-12")
        assert (only.amount, only.note, only.billable) == (None, "no price", None)
        assert store.ledger(month="2026-11")[0].amount == Decimal("0.0080")
        assert len(store.ledger()) == 3

    def test_the_ledger_month_is_the_utc_month(self, store: Store) -> None:
        # 00:30 on 1 December in UTC+2 is still 30 November in UTC.
        at = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
        store.add_ledger(LedgerEntry("meta", "wamid.EDGE", "utility", at))
        [entry] = store.ledger(month="2026-11")
        assert entry.at == at and entry.month == "2026-11"
        assert store.ledger(month="2026-12") == []

    def test_values_are_json_and_overwritten(self, store: Store) -> None:
        assert store.get_value("router", "breaker") is None
        store.set_value(
            "router", "breaker", {"meta": {"open_until": "2026-11-20T12:00:00+00:00"}, "n": (1, 2)}
        )
        assert store.get_value("router", "breaker") == {
            "meta": {"open_until": "2026-11-20T12:00:00+00:00"},
            "n": [1, 2],
        }
        store.set_value("router", "breaker", 3)
        assert store.get_value("router", "breaker") == 3
        assert store.get_value("other", "breaker") is None

    def test_a_none_value_clears_only_its_key(self, store: Store) -> None:
        # Opt-outs and handoff keep one key per user and clear it with None (eki.optout, eki.handoff).
        store.set_value("eki.optout", "5215512345678", {"opted_out": True, "by": "user"})
        store.set_value("eki.handoff", "5215512345678", {"mode": "human", "staff": "lucía"})
        assert store.get_value("eki.optout", "5215512345678") == {"opted_out": True, "by": "user"}
        assert store.get_value("eki.handoff", "5215512345678")["staff"] == "lucía"
        store.set_value("eki.optout", "5215512345678", None)
        assert store.get_value("eki.optout", "5215512345678") is None
        assert store.get_value("eki.handoff", "5215512345678") == {"mode": "human", "staff": "lucía"}

    def test_one_users_values_in_several_namespaces_are_read_together(self, store: Store) -> None:
        # Every inbound message asks for the sender's opt-out and handoff state in one read.
        store.set_value("eki.optout", "5215512345678", {"opted_out": True})
        store.set_value("eki.handoff", "5215512345678", {"mode": "human"})
        store.set_value("eki.handoff", "5215599999999", {"mode": "requested"})
        both = read_values(store, "5215512345678", ("eki.optout", "eki.handoff", "eki.other"))
        assert both == {"eki.optout": {"opted_out": True}, "eki.handoff": {"mode": "human"}}
        assert read_values(store, "5215599999999", ("eki.optout", "eki.handoff")) == {
            "eki.handoff": {"mode": "requested"}
        }
        store.set_value("eki.optout", "5215512345678", None)
        assert read_values(store, "5215512345678", ("eki.optout",)) == {}


class CounterContract(_Contract):
    """Counters and compare-and-set: what shared allowance, rate and breaker state stand on."""

    def test_a_counter_starts_at_zero_and_adds_up(self, store: Store) -> None:
        assert store.increment("router", "allowance:meta:2026-11") == 1
        assert store.increment("router", "allowance:meta:2026-11", 2) == 3
        assert store.get_value("router", "allowance:meta:2026-11") == 3
        assert store.increment("router", "allowance:meta:2026-12") == 1

    def test_a_step_past_the_limit_changes_nothing(self, store: Store) -> None:
        assert store.increment("router", "free", limit=2) == 1
        assert store.increment("router", "free", limit=2) == 2
        assert store.increment("router", "free", limit=2) is None
        assert store.increment("router", "free", 5, limit=6) is None
        assert store.get_value("router", "free") == 2
        assert store.increment("router", "none", limit=0) is None
        assert store.get_value("router", "none") is None

    def test_concurrent_increments_under_a_limit_are_exact(self, store: Store) -> None:
        granted: list[int | None] = []
        barrier = threading.Barrier(6)

        def spend() -> None:
            barrier.wait()
            for _ in range(20):
                granted.append(store.increment("router", "race", limit=50))

        threads = [threading.Thread(target=spend) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(g for g in granted if g is not None) == list(range(1, 51))
        assert granted.count(None) == 70
        assert store.get_value("router", "race") == 50

    def test_a_value_that_is_not_a_counter_is_refused(self, store: Store) -> None:
        store.set_value("router", "text", "three")
        with pytest.raises(TypeError):
            store.increment("router", "text")
        assert store.get_value("router", "text") == "three"

    def test_compare_and_set_writes_only_over_the_expected_value(self, store: Store) -> None:
        opened = {"state": "open", "until": "2026-11-20T12:01:00+00:00"}
        assert store.compare_and_set("breaker", "meta", None, opened) is True
        assert store.compare_and_set("breaker", "meta", None, {"state": "closed"}) is False
        assert store.get_value("breaker", "meta") == opened
        assert store.compare_and_set("breaker", "meta", {"state": "closed"}, {"state": "x"}) is False
        # Compared as JSON: key order and tuples do not matter.
        same = {"until": "2026-11-20T12:01:00+00:00", "state": "open"}
        assert store.compare_and_set("breaker", "meta", same, {"state": "closed", "n": (1,)}) is True
        assert store.get_value("breaker", "meta") == {"state": "closed", "n": [1]}

    def test_one_concurrent_compare_and_set_wins(self, store: Store) -> None:
        won: list[int] = []
        barrier = threading.Barrier(6)

        def claim(n: int) -> None:
            barrier.wait()
            if store.compare_and_set("breaker", "probe", None, n):
                won.append(n)

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1
        assert store.get_value("breaker", "probe") == won[0]


class HandlingContract(_Contract):
    """Durable handling: work written with its event, claims with leases, retries, dead work."""

    LEASE = timedelta(seconds=30)

    def lease(self, owner: str = "worker-1", at: datetime = T0) -> Lease:
        return Lease(owner, at + self.LEASE)

    def test_work_is_recorded_with_its_event_and_deduped(self, store: Store) -> None:
        work_id = store.record_work(inbound("wamid.W1"), self.lease())
        assert work_id is not None
        row = store.get_message("meta", "wamid.W1")
        assert row is not None and row.status == "received" and row.handling == "pending"
        assert store.record_work(inbound("wamid.W1"), self.lease("worker-2")) is None
        assert store.record_inbound(inbound("wamid.W1")) is False
        store.record_inbound(inbound("wamid.W2"))
        assert store.record_work(inbound("wamid.W2")) is None  # logged already: a duplicate
        assert store.last_inbound_at("meta", BUSINESS, USER) == T0

    def test_a_live_lease_is_not_claimed_an_expired_one_is(self, store: Store) -> None:
        work_id = store.record_work(inbound(), self.lease("worker-1"))
        assert work_id is not None
        assert store.claim_work(work_id, self.lease("worker-2"), now=T0 + timedelta(seconds=1)) is None
        later = T0 + self.LEASE + timedelta(seconds=1)
        item = store.claim_work(work_id, self.lease("worker-2", later), now=later)
        assert item is not None and item.lease_owner == "worker-2" and item.attempts == 2
        assert item.kind == "message" and item.entry is not None and item.entry.message_id == "wamid.IN1"

    def test_only_one_of_concurrent_claims_wins(self, store: Store) -> None:
        work_id = store.record_work(inbound())
        assert work_id is not None
        wins: list[str] = []

        def claim(owner: str) -> None:
            if store.claim_work(work_id, self.lease(owner), now=T0) is not None:
                wins.append(owner)

        threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1

    def test_the_sweeper_claims_unleased_and_expired_work_only(self, store: Store) -> None:
        free = store.record_work(inbound("wamid.FREE"))
        live = store.record_work(inbound("wamid.LIVE"), self.lease("busy", T0 + timedelta(minutes=5)))
        expired = store.record_work(inbound("wamid.GONE"), self.lease("dead-worker"))
        now = T0 + timedelta(minutes=1)
        claimed = store.claim_due(self.lease("sweeper", now), now=now, max_attempts=5)
        assert {w.id for w in claimed} == {free, expired}
        assert {w.id: w.attempts for w in claimed} == {free: 1, expired: 2}
        assert all(w.lease_owner == "sweeper" for w in claimed)
        assert live not in {w.id for w in store.claim_due(self.lease("other", now), now=now, max_attempts=5)}

    def test_handled_work_leaves_the_pending_list_and_shows_on_its_row(self, store: Store) -> None:
        work_id = store.record_work(inbound(), self.lease())
        assert work_id is not None
        assert [w.id for w in store.pending_work()] == [work_id]
        assert store.finish_work(work_id, "someone-else") is False
        assert store.finish_work(work_id, "worker-1") is True
        assert store.pending_work() == []
        row = store.get_message("meta", "wamid.IN1")
        assert row is not None and row.handling == "handled"
        item = store.get_work(work_id)
        assert item is not None and item.state == "handled" and item.lease_owner is None
        assert store.finish_work(work_id, "worker-1") is False  # done is done

    def test_a_failed_attempt_is_retried_when_due_then_dead(self, store: Store) -> None:
        work_id = store.record_work(inbound(), self.lease())
        assert work_id is not None
        retry = T0 + timedelta(seconds=10)
        assert store.finish_work(work_id, "worker-1", error="boom", retry_at=retry)
        item = store.get_work(work_id)
        assert item is not None and item.state == "failed" and item.last_error == "boom"
        assert item.next_attempt_at == retry
        assert store.claim_due(self.lease("s", T0), now=T0 + timedelta(seconds=5), max_attempts=5) == []
        [again] = store.claim_due(self.lease("s", retry), now=retry, max_attempts=5)
        assert again.id == work_id and again.attempts == 2
        assert store.finish_work(work_id, "s", error="boom again")  # no retry_at: the last
        [dead] = store.pending_work()
        assert dead.state == "dead" and dead.last_error == "boom again"
        row = store.get_message("meta", "wamid.IN1")
        assert row is not None and row.handling == "dead"
        assert store.claim_due(self.lease("s", retry), now=retry + self.LEASE, max_attempts=5) == []

    def test_an_expired_lease_on_the_last_attempt_is_dead(self, store: Store) -> None:
        work_id = store.record_work(inbound(), self.lease("crashing"))
        assert work_id is not None
        later = T0 + self.LEASE * 2
        assert store.claim_due(self.lease("s", later), now=later, max_attempts=1) == []
        item = store.get_work(work_id)
        assert item is not None and item.state == "dead" and item.last_error

    def test_retry_makes_dead_work_pending_again(self, store: Store) -> None:
        first = store.record_work(inbound("wamid.D1"), self.lease())
        second = store.record_work(inbound("wamid.D2"), self.lease())
        assert first is not None and second is not None
        store.finish_work(first, "worker-1", error="x")
        store.finish_work(second, "worker-1", error="y")
        assert store.retry_work(first) == 1
        item = store.get_work(first)
        assert item is not None and item.state == "pending" and item.attempts == 0
        assert store.retry_work() == 1  # all dead ones: the second
        assert store.retry_work("m999999") == 0 and store.retry_work("nonsense") == 0
        claimed = store.claim_due(self.lease("s"), now=T0, max_attempts=3)
        assert {w.id for w in claimed} == {first, second}

    def test_statuses_and_changes_carry_work_too(self, store: Store) -> None:
        store.log_outbound(outbound("wamid.OUT1"))
        status_work = store.record_work(status("wamid.OUT1", "failed", error=131047), self.lease())
        assert status_work is not None
        assert store.record_work(status("wamid.OUT1", "failed"), self.lease()) is None
        assert store.record_status(status("wamid.OUT1", "failed")) is False
        assert _row(store, "wamid.OUT1")[0] == "failed"
        change = ChangeEvent(
            provider="meta",
            field="account_update",
            timestamp=T0,
            raw={"event": "VERIFIED"},
            account_id="WABA1",
        )
        change_work = store.record_work(change)
        assert change_work is not None and change_work != status_work
        items = {w.id: w for w in store.pending_work()}
        record, entry = items[status_work].status, items[change_work].entry
        assert items[status_work].kind == "status" and items[change_work].kind == "change"
        assert record is not None and record.error_code == 131047
        assert entry is not None and entry.raw == {"event": "VERIFIED"}
        assert store.finish_work(status_work, "worker-1")
        assert [w.id for w in store.pending_work()] == [change_work]


def queued_send(
    *, state: Any = "queued", correlation: str | None = None, expires_at: datetime = T0 + timedelta(days=1)
) -> tuple[OutboxItem, LogEntry]:
    """An outbox send and its log row (the router's message, options and row, as JSON)."""
    item = OutboxItem(
        to="+" + USER,
        message={"kind": "Text", "body": "hi there", "parts": ("a", "b")},
        options={"category": "service", "inbound": {"provider": "meta", "id": "wamid.IN1"}},
        expires_at=expires_at,
        state=state,
        correlation=correlation,
        provider="meta" if correlation else None,
        last_error="meta: the provider is down",
    )
    entry = dataclasses.replace(outbound(None, status_=state), extra={"outbox": True})
    return item, entry


class OutboxContract(_Contract):
    """The outbox: sends that wait (``queued``) or whose outcome is unknown, claimed with leases."""

    LEASE = timedelta(seconds=30)

    def lease(self, owner: str = "worker-1", at: datetime = T0) -> Lease:
        return Lease(owner, at + self.LEASE)

    def test_a_queued_send_is_kept_with_its_log_row(self, store: Store) -> None:
        outbox_id = store.enqueue_send(*queued_send())
        item = store.get_send(outbox_id)
        assert item is not None and item.id == outbox_id and outbox_id.startswith("o")
        assert item.state == "queued" and item.to == "+" + USER and item.attempts == 0
        assert item.message == {"kind": "Text", "body": "hi there", "parts": ["a", "b"]}
        assert item.options["inbound"] == {"provider": "meta", "id": "wamid.IN1"}
        assert item.expires_at == T0 + timedelta(days=1) and item.created_at is not None
        rows = [r for r in store.list_log(direction="out") if r.id == item.log_id]
        assert len(rows) == 1 and rows[0].status == "queued" and rows[0].message_id is None
        assert [i.id for i in store.pending_sends()] == [outbox_id]
        assert store.get_send("o999999") is None and store.get_send("m1") is None

    def test_due_sends_are_claimed_once_with_a_lease(self, store: Store) -> None:
        first = store.enqueue_send(*queued_send())
        second = store.enqueue_send(*queued_send())
        claimed = store.claim_sends(self.lease("worker-1"), now=T0)
        assert [i.id for i in claimed] == [first, second]
        assert all(i.attempts == 1 and i.lease_owner == "worker-1" for i in claimed)
        assert store.claim_sends(self.lease("worker-2"), now=T0 + timedelta(seconds=1)) == []
        later = T0 + self.LEASE + timedelta(seconds=1)
        again = store.claim_sends(self.lease("worker-2", later), now=later, limit=1)
        assert [(i.id, i.attempts, i.lease_owner) for i in again] == [(first, 2, "worker-2")]

    def test_only_one_of_concurrent_claims_wins(self, store: Store) -> None:
        outbox_id = store.enqueue_send(*queued_send())
        won: list[str] = []

        def claim(owner: str) -> None:
            won.extend(owner for _ in store.claim_sends(self.lease(owner), now=T0))

        threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1
        item = store.get_send(outbox_id)
        assert item is not None and item.lease_owner == won[0]

    def test_a_retry_is_due_at_its_time_and_sent_is_final(self, store: Store) -> None:
        outbox_id = store.enqueue_send(*queued_send())
        store.claim_sends(self.lease(), now=T0)
        retry = T0 + timedelta(minutes=1)
        assert not store.finish_send(outbox_id, "worker-2", state="queued", retry_at=retry)
        assert store.finish_send(outbox_id, "worker-1", state="queued", retry_at=retry, error="still down")
        item = store.get_send(outbox_id)
        assert item is not None and item.last_error == "still down" and item.lease_owner is None
        assert store.claim_sends(self.lease(at=T0), now=T0 + timedelta(seconds=59)) == []
        (claimed,) = store.claim_sends(self.lease(at=retry), now=retry)
        entry = dataclasses.replace(outbound("wamid.LATER"), reason="queued:ProviderDown", extra={"part": 1})
        assert store.finish_send(outbox_id, "worker-1", state="sent", entry=entry)
        assert not store.finish_send(outbox_id, "worker-1", state="failed")
        row = store.get_message("meta", "wamid.LATER")
        assert row is not None and row.id == claimed.log_id and row.status == "accepted"
        assert row.reason == "queued:ProviderDown" and row.extra == {"part": 1}
        assert store.pending_sends() == []
        assert store.claim_sends(self.lease(at=retry), now=retry + timedelta(days=2)) == []

    def test_a_rewritten_row_takes_the_statuses_that_came_first(self, store: Store) -> None:
        outbox_id = store.enqueue_send(*queued_send())
        store.claim_sends(self.lease(), now=T0)
        assert store.record_status(status("wamid.FAST", "delivered"))
        assert store.finish_send(outbox_id, "worker-1", state="sent", entry=outbound("wamid.FAST"))
        assert _row(store, "wamid.FAST")[0] == "delivered"

    def test_an_expired_send_is_claimed_and_ended(self, store: Store) -> None:
        outbox_id = store.enqueue_send(*queued_send(expires_at=T0 - timedelta(seconds=1)))
        (claimed,) = store.claim_sends(self.lease(), now=T0)
        expired = dataclasses.replace(outbound(None, status_="expired"), error_message="the TTL passed")
        assert store.finish_send(
            outbox_id, "worker-1", state="expired", entry=expired, error="the TTL passed"
        )
        item = store.get_send(outbox_id)
        assert item is not None and item.state == "expired" and item.last_error == "the TTL passed"
        (row,) = [r for r in store.list_log(direction="out") if r.id == claimed.log_id]
        assert row.status == "expired" and row.error_message == "the TTL passed"
        assert store.pending_sends() == []

    def test_a_status_with_the_key_resolves_an_unknown_send(self, store: Store) -> None:
        outbox_id = store.enqueue_send(*queued_send(state="unknown", correlation="k1"))
        store.record_status(status("wamid.MAYBE", "sent"))
        assert store.resolve_send("twilio", "k1", "wamid.MAYBE") is None  # another provider's key
        resolved = store.resolve_send("meta", "k1", "wamid.MAYBE")
        assert resolved is not None and resolved.id == outbox_id and resolved.state == "unknown"
        item = store.get_send(outbox_id)
        assert item is not None and item.state == "sent"
        row = store.get_message("meta", "wamid.MAYBE")
        assert row is not None and row.id == item.log_id and row.status == "sent"
        assert store.resolve_send("meta", "k1", "wamid.MAYBE") is None  # once
        store.record_status(status("wamid.MAYBE", "read"))
        assert _row(store, "wamid.MAYBE")[0] == "read"

    def test_a_held_unknown_send_is_still_resolved(self, store: Store) -> None:
        outbox_id = store.enqueue_send(*queued_send(state="unknown", correlation="k2"))
        store.claim_sends(self.lease(), now=T0)
        assert store.resolve_send("meta", "k2", "wamid.K2") is not None
        assert not store.finish_send(
            outbox_id, "worker-1", state="unknown", correlation="k3", provider="meta"
        )

    def test_retry_makes_sends_due_and_reopens_ended_ones(self, store: Store) -> None:
        waiting = store.enqueue_send(*queued_send())
        ended = store.enqueue_send(*queued_send())
        store.claim_sends(self.lease(), now=T0)
        store.finish_send(waiting, "worker-1", state="queued", retry_at=T0 + timedelta(hours=1))
        store.finish_send(ended, "worker-1", state="failed", error="refused")
        assert store.retry_send("x1", expires_at=T0) == 0
        assert store.retry_send(ended, expires_at=T0 + timedelta(days=3)) == 1
        item = store.get_send(ended)
        assert item is not None and item.state == "queued" and item.attempts == 0
        assert item.expires_at == T0 + timedelta(days=3)
        assert store.retry_send(expires_at=T0 + timedelta(days=3)) == 2
        assert {i.id for i in store.claim_sends(self.lease(), now=T0)} == {waiting, ended}


class StoreContract(
    LogContract,
    StatusContract,
    WindowContract,
    ValuesContract,
    CounterContract,
    HandlingContract,
    OutboxContract,
):
    """The whole contract: subclass it with a ``store`` fixture (see the module's docstring)."""
