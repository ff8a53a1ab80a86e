"""Durable handling: acked work survives its process, re-runs never duplicate replies, failures
are retried with a bound, then dead and revivable (docs/deployment.md, "Durable handling")."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot, SQLiteStore, handoff
from eki_whatsapp.dispatch import STATES_FRESH
from eki_whatsapp.handoff import HandoffState
from eki_whatsapp.messages import Text
from eki_whatsapp.runners import Work
from eki_whatsapp.testing import DEFAULT_META_USER, meta_status, meta_text

from ..routing.fakes import FakeProvider
from .helpers import APP_SECRET, make_settings

URL = "https://bot.example.com/webhook/whatsapp/"


class LostRunner:
    """A process killed right after the acks: the work it was given never runs."""

    leases_here = True

    def __init__(self) -> None:
        self.lost: list[Work] = []

    def submit(self, work: Work) -> None:
        self.lost.append(work)

    def close(self) -> None:
        return None


class ElsewhereRunner:
    """A runner that runs work in another place (a Celery worker): it gets ids, and claims."""

    leases_here = False

    def __init__(self) -> None:
        self.queue: list[Work] = []

    def submit(self, work: Work) -> None:
        self.queue.append(work)

    def close(self) -> None:
        return None


@pytest.fixture
def meta() -> FakeProvider:
    return FakeProvider("meta", "106540352242922")


def make_bot(store: Any, meta: FakeProvider, *, inline: bool = False, **settings: Any) -> Bot:
    values: dict[str, Any] = {"whatsapp_webhook_url": URL, "whatsapp_sweep_interval_seconds": 0}
    values.update(settings)
    bot = Bot(make_settings(**values), store=store, providers={"meta": meta}, inline=inline)

    @bot.on_message
    def echo(message: Any, ctx: Any) -> None:
        ctx.reply(f"echo: {message.text}")

    return bot


def says(bot: Bot, text: str, wamid: str) -> None:
    assert bot.handle(meta_text(text, message_id=wamid).request(URL, secret=APP_SECRET)).status == 200


def watch(obj: Any, name: str, note: Callable[..., Any]) -> list[Any]:
    """Replace the method ``name`` of ``obj`` with one that first appends ``note(*args)`` to the
    list returned here, then calls the real one."""
    notes: list[Any] = []
    real = getattr(obj, name)

    def watched(*args: Any) -> Any:
        notes.append(note(*args))
        return real(*args)

    setattr(obj, name, watched)
    return notes


def replies(provider: FakeProvider) -> list[str]:
    return [m.body for _, m in provider.sent if isinstance(m, Text)]


def test_work_acked_by_a_process_that_died_is_handled_once_by_the_next(
    tmp_path: Path, meta: FakeProvider
) -> None:
    path = tmp_path / "bot.sqlite3"
    first = make_bot(SQLiteStore(path), meta, whatsapp_handler_lease_seconds=0.001)
    first.runner = lost = LostRunner()
    for n in range(3):
        says(first, f"m{n}", f"wamid.D{n}")
    assert len(lost.lost) == 3 and replies(meta) == []
    row = first.store.get_message("meta", "wamid.D0")
    assert row is not None and row.status == "received" and row.handling == "pending"
    # The process is gone; a new one starts on the same file: when it starts serving, its
    # sweeper finds the work.
    second = make_bot(SQLiteStore(path), meta)
    says(second, "m3", "wamid.D3")
    assert second.drain()
    assert sorted(replies(meta)) == ["echo: m0", "echo: m1", "echo: m2", "echo: m3"]
    assert second.store.pending_work() == []
    row = second.store.get_message("meta", "wamid.D0")
    assert row is not None and row.handling == "handled" and row.attempts == 2
    # A redelivery of the same bodies is a duplicate, and nothing is answered again.
    for n in range(3):
        says(second, f"m{n}", f"wamid.D{n}")
    assert second.drain() and len(replies(meta)) == 4
    second.close()


def test_a_handler_run_again_does_not_reply_again(tmp_path: Path, meta: FakeProvider) -> None:
    bot = make_bot(
        SQLiteStore(tmp_path / "bot.sqlite3"), meta, inline=True, whatsapp_handler_backoff_seconds=0
    )
    runs: list[list[str | None]] = []

    @bot.on_message
    def fails_once(message: Any, ctx: Any) -> None:
        ctx.reply("second reply")
        runs.append([ctx.work_id])
        if len(runs) == 1:
            raise RuntimeError("crashed after replying")

    says(bot, "hello", "wamid.R1")
    [item] = bot.store.pending_work()
    assert item.state == "failed" and "crashed after replying" in (item.last_error or "")
    assert bot.sweeper.sweep() == 1 and bot.drain()
    assert replies(meta) == ["echo: hello", "second reply"]  # both handlers ran twice
    assert len(runs) == 2 and bot.store.pending_work() == []
    bot.close()


def test_each_send_of_a_handling_has_a_stable_key(meta: FakeProvider) -> None:
    bot = make_bot(None, meta, inline=True, whatsapp_store_url="memory://")
    keys: list[list[str | None]] = []

    @bot.on_message
    def record_keys(message: Any, ctx: Any) -> None:
        keys.append([ctx.idempotency_key(), ctx.idempotency_key()])

    says(bot, "hi", "wamid.K1")
    assert keys == [["meta:wamid.K1#2", "meta:wamid.K1#3"]]  # #1 was the echo's reply
    bot.close()


def test_a_handler_failing_every_time_is_dead_after_the_last_attempt_then_retried(
    tmp_path: Path, meta: FakeProvider
) -> None:
    bot = make_bot(
        SQLiteStore(tmp_path / "bot.sqlite3"),
        meta,
        inline=True,
        whatsapp_handler_backoff_seconds=0,
        whatsapp_handler_max_attempts=2,
    )
    broken = [True]

    @bot.on_message
    def flaky(message: Any, ctx: Any) -> None:
        if broken[0]:
            raise ValueError("the database of orders is down")

    says(bot, "order 7", "wamid.X1")
    assert bot.sweeper.sweep() == 1 and bot.drain()
    [dead] = bot.store.pending_work()
    assert dead.state == "dead" and dead.attempts == 2
    assert "ValueError: the database of orders is down" in (dead.last_error or "")
    assert bot.sweeper.sweep() == 0  # dead stays dead
    broken[0] = False
    assert bot.store.retry_work(dead.id) == 1
    assert bot.sweeper.sweep() == 1 and bot.drain()
    assert bot.store.pending_work() == []
    assert replies(meta) == ["echo: order 7"]  # the echo's reply went out once, in all three runs
    bot.close()


def test_a_message_staff_took_over_is_a_completed_handling(meta: FakeProvider) -> None:
    bot = make_bot(None, meta, inline=True, whatsapp_store_url="memory://")
    bot.handoff.take_over(DEFAULT_META_USER, staff="ana")
    says(bot, "hello?", "wamid.H1")
    row = bot.store.get_message("meta", "wamid.H1")
    assert row is not None and row.handling == "handled"
    assert replies(meta) == [] and bot.store.pending_work() == []
    bot.close()


def test_statuses_are_handled_durably_too(meta: FakeProvider) -> None:
    bot = make_bot(None, meta, inline=True, whatsapp_store_url="memory://")
    seen: list[str] = []
    bot.on_status(lambda status, ctx: seen.append(status.status))
    body = meta_status("wamid.OUT9", "delivered").request(URL, secret=APP_SECRET)
    assert bot.handle(body).status == 200
    assert seen == ["delivered"] and bot.store.pending_work() == []
    bot.close()


def test_a_runner_elsewhere_gets_unclaimed_work_and_claims_it_where_it_runs(meta: FakeProvider) -> None:
    bot = make_bot(None, meta, whatsapp_store_url="memory://")
    bot.runner = elsewhere = ElsewhereRunner()
    says(bot, "hi", "wamid.C1")
    [work] = elsewhere.queue
    item = bot.store.get_work(work.id)
    assert work.lease is None and item is not None and item.lease_owner is None and item.attempts == 0
    bot.process_work(Work(work.id))  # the worker got only the id: the event is read back
    bot.process_work(Work(work.id))  # a task delivered twice: the second finds it handled
    assert replies(meta) == ["echo: hi"]
    assert bot.store.pending_work() == []
    bot.close()


@pytest.mark.asyncio
async def test_the_async_face_records_and_finishes_work_too(meta: FakeProvider) -> None:
    bot = make_bot(None, meta, whatsapp_store_url="memory://")
    request = meta_text("hola", message_id="wamid.A1").request(URL, secret=APP_SECRET)
    assert (await bot.handle_async(request)).status == 200
    await bot.drain_async()
    row = bot.store.get_message("meta", "wamid.A1")
    assert row is not None and row.handling == "handled"
    assert replies(meta) == ["echo: hola"]
    bot.close()


def test_a_store_that_cannot_record_work_is_refused(meta: FakeProvider) -> None:
    from eki_whatsapp import ConfigError
    from eki_whatsapp.store.memory import MemoryStore

    class OldStore(MemoryStore):
        record_work = None  # type: ignore[assignment]
        claim_due = None  # type: ignore[assignment]

    with pytest.raises(ConfigError, match="OldStore has no record_work, claim_due") as refused:
        make_bot(OldStore(), meta)
    assert "HandlingContract" in str(refused.value)


def test_the_sweeper_stops_quietly_once_its_store_is_closed(
    tmp_path: Path, meta: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "log.sqlite3")
    bot = make_bot(store, meta, inline=True, whatsapp_sweep_interval_seconds=0)
    says(bot, "hola", "wamid.CLOSED1")
    store.close()
    with caplog.at_level("WARNING", logger="eki_whatsapp.handling"):
        bot.sweeper.kick()  # interval 0: sweeps here
        bot.sweeper.kick()
    assert store.closed and bot.sweeper._stopping
    assert not [r for r in caplog.records if "sweeping" in r.getMessage()]
    assert replies(meta) == ["echo: hola"]


def test_outcomes_of_a_burst_are_committed_together(tmp_path: Path, meta: FakeProvider) -> None:
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    bot = make_bot(store, meta)
    written = watch(store, "finish_works", lambda outcomes: len(outcomes))
    bot.background._threads._gather = 0.5  # type: ignore[union-attr]  # the burst arrives meanwhile
    # Only drain() writes here: a busy machine that takes longer than the writer thread's wait
    # over the burst must not split it (the age is for a steady load, not this test).
    assert bot.outcomes is not None
    bot.outcomes._age = 3600
    for n in range(20):
        says(bot, f"m{n}", f"wamid.B{n}")
    assert bot.drain()
    assert written == [20]  # one transaction for the burst, before drain() returned
    assert len(replies(meta)) == 20 and store.pending_work() == []
    bot.close()


def test_an_outcome_not_yet_written_when_the_process_dies_is_handled_again_without_a_second_reply(
    tmp_path: Path, meta: FakeProvider
) -> None:
    path = tmp_path / "bot.sqlite3"
    first = make_bot(SQLiteStore(path), meta, whatsapp_handler_lease_seconds=0.001)
    assert first.outcomes is not None
    first.outcomes.add = lambda *outcome: None  # type: ignore[method-assign]  # died before the write
    says(first, "hello", "wamid.K1")
    assert first.drain() and replies(meta) == ["echo: hello"]
    row = first.store.get_message("meta", "wamid.K1")
    assert row is not None and row.handling == "pending"
    second = make_bot(SQLiteStore(path), meta)
    assert second.sweeper.sweep() == 1 and second.drain()
    assert replies(meta) == ["echo: hello"]  # run again; the stored receipt answered the reply
    row = second.store.get_message("meta", "wamid.K1")
    assert row is not None and row.handling == "handled"
    second.close()


def test_a_statuss_price_is_written_in_the_transaction_of_its_handlings_outcome(
    tmp_path: Path, meta: FakeProvider
) -> None:
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    bot = make_bot(store, meta)
    seen: list[str] = []
    bot.on_status(lambda status, ctx: seen.append(status.message_id))
    inside = watch(store, "add_ledger", lambda entry: store._batch_depth > 0)
    for n in range(5):
        body = meta_status(f"wamid.P{n}", "delivered", category="utility").request(URL, secret=APP_SECRET)
        assert bot.handle(body).status == 200
    assert bot.drain()
    assert sorted(seen) == [f"wamid.P{n}" for n in range(5)]
    assert inside == [True] * 5  # each written in the outcomes' transaction, none on its own
    assert {e.message_id for e in store.ledger()} == {f"wamid.P{n}" for n in range(5)}
    assert store.pending_work() == []
    bot.close()


def test_a_deferred_reaction_that_fails_leaves_its_status_to_be_handled_again(
    tmp_path: Path, meta: FakeProvider
) -> None:
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    bot = make_bot(store, meta)

    def broken(status: Any) -> None:
        raise RuntimeError("price table unreadable")

    bot.router.recovery.on_status = broken  # type: ignore[method-assign]
    body = meta_status("wamid.PX", "delivered", category="utility").request(URL, secret=APP_SECRET)
    assert bot.handle(body).status == 200 and bot.drain()
    [item] = store.pending_work()
    assert item.state == "failed" and "price table unreadable" in (item.last_error or "")
    bot.close()


def test_a_failed_status_is_recovered_at_once_not_with_the_outcome(meta: FakeProvider) -> None:
    bot = make_bot(None, meta, whatsapp_store_url="memory://")
    order: list[str] = []
    on_status = bot.router.on_status
    bot.router.on_status = lambda status: (order.append("router"), on_status(status))[-1]  # type: ignore[method-assign]
    bot.on_status(lambda status, ctx: order.append("handler"))
    body = meta_status("wamid.F1", "failed", error_code=131026).request(URL, secret=APP_SECRET)
    assert bot.handle(body).status == 200 and bot.drain()
    assert order == ["router", "handler"]  # a failure may fail over: it is not deferred
    bot.close()


def test_a_handler_error_the_store_cannot_hold_is_recorded_cleaned_and_spares_the_outcomes_written_with_it(
    tmp_path: Path, meta: FakeProvider
) -> None:
    # An error text with a lone surrogate (a tool's bytes decoded with surrogateescape): SQLite
    # refuses it, and the outcomes of a burst are written in one transaction.
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    bot = make_bot(store, meta)

    @bot.on_message
    def picky(message: Any) -> None:
        if message.text == "poison":
            raise RuntimeError("unreadable \udcff answer")

    bot.background._threads._gather = 0.5  # type: ignore[union-attr]  # one burst, one write
    says(bot, "poison", "wamid.U0")
    for n in range(1, 5):
        says(bot, f"m{n}", f"wamid.U{n}")
    assert bot.drain()
    assert sorted(replies(meta)) == ["echo: m1", "echo: m2", "echo: m3", "echo: m4", "echo: poison"]
    [failed] = store.pending_work()
    assert failed.state == "failed" and "unreadable \ufffd answer" in (failed.last_error or "")
    bot.close()


def test_a_messages_sender_states_are_read_on_the_thread_that_answered(
    tmp_path: Path, meta: FakeProvider
) -> None:
    # A read on a handler thread makes it trade the interpreter lock with the answering thread.
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    bot = make_bot(store, meta)
    readers = watch(store, "get_values", lambda key, namespaces: threading.current_thread().name)
    for n in range(3):
        says(bot, f"m{n}", f"wamid.T{n}")
    assert bot.drain() and len(replies(meta)) == 3
    assert readers == [threading.current_thread().name] * 3
    bot.close()


def test_a_staff_take_over_before_the_answer_is_respected_and_old_states_are_read_again(
    meta: FakeProvider,
) -> None:
    bot = make_bot(None, meta, whatsapp_store_url="memory://")
    bot.handoff.take_over(DEFAULT_META_USER, staff="lucía")
    says(bot, "hola", "wamid.H1")
    assert bot.drain() and replies(meta) == []  # read when answered: staff have it
    bot.handoff.hand_back(DEFAULT_META_USER)
    message = meta_text("otra vez", message_id="wamid.H2").request(URL, secret=APP_SECRET)
    [event] = next(r for r in bot.webhook_readers if r.name == "meta").parse(message)
    stale = bot.handlers.user_states(event)
    assert stale is not None
    # Another process's staff take over (written to the store, not through this bot).
    now = bot.handoff.clock()
    elsewhere = HandoffState(stale.key, "human", "lucía", None, now, now)
    bot.store.set_value(handoff.NAMESPACE, stale.key, elsewhere.to_json())
    assert bot.handlers.bot_answers(event, stale)  # fresh: taken as read
    old = dataclasses.replace(stale, at=stale.at - STATES_FRESH)
    assert not bot.handlers.bot_answers(event, old)  # a second old: read again
    # A change made in this process is seen at once, whatever the age of what was read.
    bot.handoff.hand_back(DEFAULT_META_USER)
    fresh = bot.handlers.user_states(event)
    bot.handoff.take_over(DEFAULT_META_USER, staff="lucía")
    assert fresh is not None and not bot.handlers.bot_answers(event, fresh)
    bot.close()


def test_a_message_right_after_a_start_keyword_is_answered(meta: FakeProvider) -> None:
    # A user who opted out writes START and their question at once: both are answered before
    # either handler runs. The question's handler must see the opt-in START's handler made.
    bot = make_bot(None, meta, whatsapp_store_url="memory://")
    bot.optouts.opt_out(DEFAULT_META_USER)
    bot.background._threads._gather = 0.5  # type: ignore[union-attr]  # both arrive before handling
    says(bot, "START", "wamid.S1")
    says(bot, "quiero pedir", "wamid.S2")
    assert bot.drain()
    assert not bot.optouts.is_opted_out(DEFAULT_META_USER)
    assert "echo: quiero pedir" in replies(meta)
    bot.close()


def test_a_message_right_after_a_stop_keyword_is_not_answered(meta: FakeProvider) -> None:
    bot = make_bot(None, meta, whatsapp_store_url="memory://")
    bot.background._threads._gather = 0.5  # type: ignore[union-attr]  # both arrive before handling
    says(bot, "STOP", "wamid.S3")
    says(bot, "one more thing", "wamid.S4")
    assert bot.drain()
    assert "echo: one more thing" not in replies(meta)
    assert bot.store.pending_work() == []  # not answered is handled, not an error to retry
    bot.close()


def test_a_store_failing_the_states_read_on_the_answering_thread_leaves_it_to_the_handler(
    tmp_path: Path, meta: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    bot = make_bot(store, meta)
    get_values = store.get_values
    failures = [RuntimeError("a store of your own, failing once")]

    def flaky(key: str, namespaces: Any) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return get_values(key, namespaces)

    store.get_values = flaky  # type: ignore[method-assign]
    says(bot, "hola", "wamid.S1")
    assert bot.drain() and replies(meta) == ["echo: hola"]  # read again by the handler, at once
    assert "failing once" in caplog.text and store.pending_work() == []
    bot.close()
