"""Through the Bot: every send is logged (direction out, provider, recipient, kind, text, id, status,
attempts, error) and later status webhooks update the same row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from pvhelpers import (
    META_MESSAGES,
    TWILIO_CONTENT,
    TWILIO_MESSAGES,
    USER,
    Sleeps,
    content_refused,
    meta,
    meta_fail,
    meta_inbound_text,
    meta_ok,
    meta_status,
    settings,
    twilio,
    twilio_inbound_text,
    twilio_ok,
    twilio_status,
)

from eki_whatsapp import Bot, MemoryStore
from eki_whatsapp.messages import Buttons, Template
from eki_whatsapp.providers import MetaCloud, TemplateError, Twilio


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    s = MemoryStore()
    yield s
    s.close()


def make_bot(policy: str, store: MemoryStore, **providers: Any) -> Bot:
    return Bot(settings(whatsapp_provider=policy), store=store, providers=providers, inline=True)


@respx.mock
def test_ctx_reply_is_logged_and_status_updates_the_same_row(store: MemoryStore) -> None:
    route = respx.post(META_MESSAGES).mock(side_effect=[meta_fail(130429, 429), meta_ok("wamid.OUT1")])
    bot = make_bot("meta", store, meta=meta(Sleeps()))

    @bot.on_message
    def echo(message: Any, ctx: Any) -> None:
        ctx.reply(f"You said: {message.text}")

    assert bot.handle(meta_inbound_text("hello", "wamid.IN1")).status == 200
    assert route.call_count == 2
    row = store.get_message("meta", "wamid.OUT1")
    assert row is not None
    assert (row.direction, row.provider, row.recipient, row.type) == ("out", "meta", USER, "text")
    assert (row.text, row.status, row.attempts) == ("You said: hello", "accepted", 2)
    assert row.sender == "106540352242922"

    bot.handle(meta_status("wamid.OUT1", "delivered"))
    bot.handle(meta_status("wamid.OUT1", "read"))
    row = store.get_message("meta", "wamid.OUT1")
    assert row is not None and row.status == "read"
    outs = store.list_log(direction="out")
    assert [r.message_id for r in outs] == ["wamid.OUT1"]  # updated in place, not a new row
    bot.close()


@respx.mock
def test_bot_send_template_and_a_failed_send_are_logged(store: MemoryStore) -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok("wamid.TPL"))
    bot = make_bot("meta", store, meta=meta())
    receipt = bot.send("+16505551234", Template("order_shipped", body=["Sheena"]))
    assert receipt.message_id == "wamid.TPL" and route.call_count == 1
    row = store.get_message("meta", "wamid.TPL")
    assert row is not None and (row.type, row.recipient, row.status, row.attempts) == (
        "template",
        USER,
        "accepted",
        1,
    )

    route.mock(return_value=meta_fail(132001, 404, "template name does not exist in the translation"))
    with pytest.raises(TemplateError):
        bot.send("+16505551234", Template("missing_template"))
    failed = [r for r in store.list_log(direction="out") if r.status == "failed"]
    assert len(failed) == 1
    assert (failed[0].error_code, failed[0].provider, failed[0].type, failed[0].attempts) == (
        132001,
        "meta",
        "template",
        1,
    )
    assert "template" in (failed[0].error_message or "")
    bot.close()


@respx.mock
def test_failed_status_later_marks_the_row_failed_with_the_code(store: MemoryStore) -> None:
    respx.post(META_MESSAGES).mock(return_value=meta_ok("wamid.LATE"))
    bot = make_bot("meta", store, meta=meta())
    bot.send("+16505551234", Template("hello_world"))
    errors = [
        {
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "not a WhatsApp user"},
        }
    ]
    bot.handle(meta_status("wamid.LATE", "failed", errors=errors))
    row = store.get_message("meta", "wamid.LATE")
    assert row is not None and row.status == "failed" and row.error_code == 131026
    bot.close()


@respx.mock
def test_twilio_reply_long_text_logs_one_row_per_part_and_callbacks_update_them(store: MemoryStore) -> None:
    sids = iter(["SMpart1", "SMpart2"])
    route = respx.post(TWILIO_MESSAGES).mock(side_effect=lambda request: twilio_ok(next(sids)))
    bot = make_bot("twilio", store, twilio=twilio())
    long_text = "Sentence one is here. " * 100  # ~2200 chars: two Twilio messages

    @bot.on_message
    def answer(message: Any, ctx: Any) -> None:
        ctx.reply(long_text)

    bot.handle(twilio_inbound_text("hi"))
    assert route.call_count == 2
    rows = {r.message_id: r for r in store.list_log(direction="out")}
    assert set(rows) == {"SMpart1", "SMpart2"}
    assert all(
        r.provider == "twilio" and r.recipient == "5511987654321" and r.type == "text" for r in rows.values()
    )
    assert rows["SMpart1"].sender == "14155238886"
    bot.handle(twilio_status("SMpart2", "delivered"))
    row = store.get_message("twilio", "SMpart2")
    assert row is not None and row.status == "delivered"
    bot.close()


@respx.mock
def test_twilio_buttons_reply_rendered_as_numbered_text_and_logged(store: MemoryStore) -> None:
    respx.post(TWILIO_CONTENT).mock(return_value=content_refused())  # the fallback
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok("SMbtn"))
    bot = make_bot("twilio", store, twilio=twilio())

    @bot.on_message
    def ask(message: Any, ctx: Any) -> None:
        ctx.reply(Buttons("Confirm?", ["Yes", "No"]))

    bot.handle(twilio_inbound_text("book"))
    body = httpx.QueryParams(route.calls[0].request.content.decode())["Body"]
    assert body == "Confirm?\n\n1. Yes\n2. No"
    row = store.get_message("twilio", "SMbtn")
    assert row is not None and row.type == "buttons" and row.text == "Confirm?"
    bot.close()


def test_bot_builds_providers_from_settings() -> None:
    bot = Bot(settings(whatsapp_provider="dual"), store=MemoryStore(), inline=True)
    assert isinstance(bot.providers["meta"], MetaCloud) and isinstance(bot.providers["twilio"], Twilio)
    bot.close()
