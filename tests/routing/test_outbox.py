"""The outbox at the router level: in-process fake providers, a fake clock, memory and SQLite.

The end-to-end scenarios (fake HTTP APIs, status webhooks) are in test_outbox_e2e.py.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from eki_whatsapp import Bot, MemoryStore, SQLiteStore
from eki_whatsapp.events import StatusUpdate
from eki_whatsapp.messages import Buttons, Template, Text
from eki_whatsapp.providers import OutcomeUnknown, ProviderDown, RateLimited
from eki_whatsapp.providers._common import part_key
from eki_whatsapp.routing import Router
from eki_whatsapp.routing.stored import dump_message, load_message
from eki_whatsapp.store.base import Lease, utcnow
from eki_whatsapp.testing.store_contract import queued_send

from .conftest import USER, inbound, make_settings
from .fakes import Clock, FakeProvider


@dataclass
class Correlating(FakeProvider):
    """A fake provider that takes correlation keys, as the HTTP providers do."""

    correlates: bool = True
    keys: list[str | None] = field(default_factory=list)

    def send(self, to: str, message: Any, correlation: str | None = None) -> Any:  # type: ignore[override]
        self.keys.append(correlation)
        if self.fail_next and isinstance(self.fail_next[0], OutcomeUnknown):
            # As the HTTP providers do: the key of the part whose answer was lost.
            lost = self.fail_next[0]
            lost.correlation = part_key(correlation, len(lost.sent_message_ids))
        return self._send(to, message)


def down() -> ProviderDown:
    return ProviderDown("down", provider="meta")


def status_webhook(
    router: Router, store: Any, message_id: str, status: str, at: Any, correlation: str | None
) -> None:
    """A Meta status echoing a send's correlation key: logged, then seen by the router (as the
    webhook does)."""
    event = StatusUpdate(
        provider="meta", message_id=message_id, status=status, timestamp=at, raw={}, correlation=correlation
    )
    store.record_status(event)
    router.on_status(event)


def test_every_message_model_round_trips_through_the_outbox() -> None:
    for message in (
        Text("hi *there*", preview_url=True, reply_to="wamid.X"),
        Buttons("Confirm?", [("yes", "Yes"), ("no", "No")], footer="f"),
        Template("order_shipped", "en_US", body=["Sheena", "8127"], callback_data="x"),
    ):
        assert load_message(dump_message(message)) == message


def test_a_rate_limited_send_is_queued_and_a_refused_one_raises(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider
) -> None:
    router = make_router(whatsapp_provider="meta")
    store.record_inbound(inbound("meta", clock.now))
    meta.fail_next.append(RateLimited("slow down", provider="meta"))
    receipt = router.send(USER, "hola")
    assert receipt.status == "queued" and receipt.message_id.startswith("o")
    (item,) = store.pending_sends()
    assert item.id == receipt.message_id and "slow down" in (item.last_error or "")
    clock.advance(seconds=10)
    assert router.outbox.deliver_due("me", 60) == 1
    assert meta.sent == [(USER, Text("hola"))] and store.pending_sends() == []


def test_a_queued_reply_is_answered_once_when_its_handler_runs_again(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider
) -> None:
    router = make_router(whatsapp_provider="meta")
    message = inbound("meta", clock.now)
    store.record_inbound(message)
    meta.fail_next.append(down())
    first = router.send(USER, "hola", inbound=message, idempotency_key="meta:in#1")
    again = router.send(USER, "hola", inbound=message, idempotency_key="meta:in#1")
    assert first.status == again.status == "queued" and first.message_id == again.message_id
    assert len(store.pending_sends()) == 1
    clock.advance(seconds=10)
    router.outbox.deliver_due("me", 60)
    done = router.send(USER, "hola", inbound=message, idempotency_key="meta:in#1")
    assert done.status == "accepted" and done.message_id.startswith("wamid.")
    assert len(meta.sent) == 1


def test_the_async_face_queues_too(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider
) -> None:
    router = make_router(whatsapp_provider="meta")
    store.record_inbound(inbound("meta", clock.now))
    meta.fail_next.append(down())
    receipt = asyncio.run(router.send_async(USER, "hola"))
    assert receipt.status == "queued" and len(store.pending_sends()) == 1


def test_a_resolved_part_of_a_split_text_leaves_the_rest_queued(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    meta = Correlating("meta", "106540352242922")
    meta.text_limit = 4096  # type: ignore[attr-defined]
    router = make_router(whatsapp_provider="meta", providers={"meta": meta})
    store.record_inbound(inbound("meta", clock.now))
    body = "Alpha. " * 500 + "\n\n" + "Bravo. " * 500 + "\n\n" + "Charlie. " * 400  # 3 parts
    lost = OutcomeUnknown("no answer", provider="meta")
    lost.sent_message_ids = ("wamid.P1",)
    meta.fail_next.append(lost)
    receipt = router.send(USER, Text(body))
    assert receipt.status == "unknown"
    (item,) = store.pending_sends()
    assert item.state == "unknown" and item.correlation == f"{meta.keys[0]}.2"
    status_webhook(router, store, "wamid.P2", "sent", clock.now, item.correlation)
    (rest,) = store.pending_sends()
    assert rest.state == "queued" and rest.id != item.id
    text = load_message(rest.message)
    assert isinstance(text, Text) and text.body == ("Charlie. " * 400).strip()
    assert router.outbox.deliver_due("me", 60) == 1
    assert [m.body[:8] for _, m in meta.sent] == ["Charlie."]


def test_a_resolved_send_keeps_why_its_provider_was_chosen(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    meta = Correlating("meta", "106540352242922")
    router = make_router(whatsapp_provider="meta", providers={"meta": meta})
    store.record_inbound(inbound("meta", clock.now))
    _, why = router.choose(USER, "hola")
    meta.fail_next.append(OutcomeUnknown("no answer", provider="meta"))
    assert router.send(USER, "hola").status == "unknown"
    (item,) = store.pending_sends()
    clock.advance(seconds=30)
    status_webhook(router, store, "wamid.LATE", "delivered", clock.now, item.correlation)
    row = store.get_message("meta", "wamid.LATE")
    assert row is not None and row.status == "delivered"
    # The row says it was kept (reason) and why that provider was tried (the routing reason).
    assert row.reason == "unknown:OutcomeUnknown" and row.extra["choice"] == why
    assert store.pending_sends() == []


def test_the_sweeper_delivers_the_outbox(clock: Clock) -> None:
    meta = FakeProvider("meta", "106540352242922")
    store = MemoryStore()
    bot = Bot(make_settings(whatsapp_provider="meta"), store=store, providers={"meta": meta})
    bot.router = Router(bot.providers, store, bot.settings, optouts=bot.optouts, clock=clock)
    meta.fail_next.append(down())
    assert bot.send(USER, Template("hello", "en_US")).status == "queued"
    clock.advance(seconds=10)
    bot.sweeper.sweep()
    assert [m for _, m in meta.sent] == [Template("hello", "en_US")]
    bot.close()


def _claim_all(path: str, owner: str) -> list[str]:
    store = SQLiteStore(path)
    claimed: list[str] = []
    while True:
        items = store.claim_sends(Lease(owner, utcnow() + timedelta(minutes=5)), now=utcnow(), limit=3)
        if not items:
            break
        claimed.extend(str(i.id) for i in items)
    store.close()
    return claimed


def test_processes_sharing_a_sqlite_file_claim_each_send_once(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    store = SQLiteStore(path)
    ids = {store.enqueue_send(*queued_send(expires_at=utcnow() + timedelta(hours=1))) for _ in range(60)}
    store.close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_claim_all, [(path, f"p{n}") for n in range(4)])
    claimed = [i for result in results for i in result]
    assert sorted(claimed) == sorted(ids)  # every send claimed, none twice


def test_a_status_that_came_before_the_answer_was_lost_resolves_the_send(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    meta = Correlating("meta", "106540352242922")
    router = make_router(whatsapp_provider="meta", providers={"meta": meta})
    store.record_inbound(inbound("meta", clock.now))
    lost = OutcomeUnknown("connection reset while waiting for the answer", provider="meta")

    def deliver_then_lose(to: str, message: Any) -> Any:
        # The provider delivers at once and its status webhook is handled, then the HTTP
        # answer is lost: the send is kept as unknown only after its status came.
        status_webhook(router, store, "wamid.EARLY", "sent", clock.now, meta.keys[-1])
        lost.correlation = meta.keys[-1]  # what the HTTP providers set
        return lost

    meta.down = deliver_then_lose
    receipt = router.send(USER, "hola", idempotency_key="meta:in#1")
    assert (receipt.status, receipt.message_id) == ("accepted", "wamid.EARLY")
    assert store.pending_sends() == []
    row = store.get_message("meta", "wamid.EARLY")
    assert row is not None and row.status == "sent"
    clock.advance(hours=1)
    meta.down = None
    assert router.outbox.deliver_due("me", 60) == 0 and meta.sent == []  # never sent again


def test_a_backlog_is_drained_batch_by_batch(clock: Clock) -> None:
    meta = FakeProvider("meta", "106540352242922")
    store = MemoryStore()
    bot = Bot(make_settings(whatsapp_provider="meta"), store=store, providers={"meta": meta})
    bot.router = Router(bot.providers, store, bot.settings, optouts=bot.optouts, clock=clock)
    meta.down = lambda to, message: down()
    for n in range(7):
        assert bot.send(USER, Template(f"t{n}", "en_US"), queue=True).status == "queued"
    meta.down = None
    clock.advance(minutes=5)
    assert bot.flush_outbox(batch=3) == 7 and len(meta.sent) == 7
    bot.close()


def test_a_queued_send_waits_as_long_as_the_provider_asked(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider
) -> None:
    router = make_router(whatsapp_provider="meta")
    meta.fail_next.append(RateLimited("slow down", provider="meta", retry_after=90))
    assert router.send(USER, Template("hello", "en_US")).status == "queued"
    clock.advance(seconds=60)
    assert router.outbox.deliver_due("me", 60) == 0  # Retry-After: 90 s
    clock.advance(seconds=31)
    assert router.outbox.deliver_due("me", 60) == 1 and len(meta.sent) == 1
