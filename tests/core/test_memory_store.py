"""What only MemoryStore has to get right beyond the store contract (``test_store_contract.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from eki_whatsapp import InboundMessage, MemoryStore
from eki_whatsapp.store.base import Lease

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def inbound(mid: str) -> InboundMessage:
    return InboundMessage(
        provider="meta", id=mid, sender="5511", recipient="106", type="text", timestamp=T0, raw={"id": mid}
    )


def test_outcomes_written_together_each_get_the_answer_finish_work_would_give() -> None:
    store = MemoryStore()
    lease = Lease("me", datetime.now(timezone.utc) + timedelta(minutes=5))
    done, taken_over, failing = (store.record_work(inbound(f"m{i}"), lease) for i in range(3))
    assert done and taken_over and failing
    retry = datetime.now(timezone.utc) + timedelta(seconds=30)
    changed = store.finish_works(
        [
            (done, "me", {}),
            (taken_over, "someone else", {}),  # its lease was taken over meanwhile
            (failing, "me", {"error": "boom", "retry_at": retry}),
            (done, "me", {}),  # finished already: the second outcome changes nothing
            ("m999", "me", {}),  # no such work
        ]
    )
    assert changed == [True, False, True, False, False]
    states = {w: store.get_work(w) for w in (done, taken_over, failing)}
    assert {w: (item.state if item else None) for w, item in states.items()} == {
        done: "handled",
        taken_over: "pending",
        failing: "failed",
    }
    failed = states[failing]
    assert failed is not None and failed.last_error == "boom"
    row = store.get_message("meta", "m0")
    assert row is not None and row.handling == "handled"
