"""Human handoff in the core, with no web framework: take over, the bot stays quiet while the
messages are still logged, staff replies through the router with their name in the log, hand
back, automatic hand-back when idle, callbacks, and the agent's ask-for-a-person tool."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot, HandoffState, MemoryStore, OptedOut, SQLiteStore
from eki_whatsapp.agent import ToolContext
from eki_whatsapp.agent.builtin import ask_for_human
from eki_whatsapp.handoff import request_human
from eki_whatsapp.messages import Template, Text
from eki_whatsapp.providers.base import WindowClosed
from eki_whatsapp.testing import meta_text, twilio_text

from ..routing.fakes import Clock, FakeProvider
from .helpers import APP_SECRET, TWILIO_TOKEN, make_settings

URL = "https://bot.example.com/webhook/whatsapp/"
USER = "5215512345678"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    s = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "handoff.sqlite3")
    yield s
    s.close()


@pytest.fixture
def meta() -> FakeProvider:
    return FakeProvider("meta", "106540352242922")


@pytest.fixture
def twilio() -> FakeProvider:
    return FakeProvider("twilio", "14155238886")


@pytest.fixture
def bot(store: Any, meta: FakeProvider, twilio: FakeProvider) -> Bot:
    bot = Bot(
        make_settings(whatsapp_webhook_url=URL),
        store=store,
        providers={"meta": meta, "twilio": twilio},
        inline=True,
    )

    @bot.on_message
    def echo(message: Any, ctx: Any) -> None:
        ctx.reply(f"echo: {message.text}")

    return bot


def meta_says(bot: Bot, text: str) -> None:
    assert bot.handle(meta_text(text, sender=USER).request(URL, secret=APP_SECRET)).status == 200


def twilio_says(bot: Bot, text: str) -> None:
    assert bot.handle(twilio_text(text, sender=USER).request(URL, secret=TWILIO_TOKEN)).status == 200


def bodies(provider: FakeProvider) -> list[str]:
    return [m.body for _, m in provider.sent if isinstance(m, Text)]


def test_after_a_take_over_the_bot_is_quiet_but_messages_are_logged(
    bot: Bot, meta: FakeProvider, twilio: FakeProvider
) -> None:
    meta_says(bot, "hola")
    assert bodies(meta) == ["echo: hola"]
    bot.handoff.take_over("+52 1 55 1234 5678", staff="lucia")
    meta_says(bot, "¿hay alguien?")
    twilio_says(bot, "¿hola?")
    assert bodies(meta) == ["echo: hola"] and bodies(twilio) == []
    assert [r.text for r in bot.store.list_log(direction="in", user=USER)] == [
        "¿hola?",
        "¿hay alguien?",
        "hola",
    ]
    state = bot.handoff.state(USER)
    assert state.mode == "human" and state.staff == "lucia"


def test_staff_reply_goes_through_the_router_and_is_logged_with_the_staff_member(
    bot: Bot, twilio: FakeProvider
) -> None:
    twilio_says(bot, "necesito ayuda")
    receipt = bot.handoff.reply(USER, "Hola, soy Lucía.", staff="lucia", provider="twilio")
    assert receipt.provider == "twilio" and bodies(twilio)[-1] == "Hola, soy Lucía."
    row = bot.store.list_log(direction="out", user=USER, limit=1)[0]
    assert row.extra["staff"] == "lucia" and row.text == "Hola, soy Lucía."
    assert bot.handoff.is_human(USER)  # replying takes the conversation over


def test_a_staff_reply_to_a_closed_window_needs_a_template(bot: Bot, meta: FakeProvider) -> None:
    with pytest.raises(WindowClosed):
        bot.handoff.reply(USER, "hola", staff="lucia", provider="meta")
    assert meta.attempts == 0
    row = bot.store.list_log(direction="out", user=USER, limit=1)[0]
    assert row.status == "failed" and row.extra["staff"] == "lucia"
    bot.handoff.reply(USER, Template("seguimiento", "es"), staff="lucia", provider="meta")
    assert meta.sent[-1][1].name == "seguimiento"


def test_staff_replies_respect_opt_outs(bot: Bot, meta: FakeProvider) -> None:
    meta_says(bot, "BAJA")
    with pytest.raises(OptedOut):
        bot.handoff.reply(USER, "¿seguro?", staff="lucia", provider="meta")


def test_hand_back_lets_the_bot_answer_again(bot: Bot, meta: FakeProvider) -> None:
    bot.handoff.take_over(USER, staff="lucia")
    meta_says(bot, "uno")
    bot.handoff.hand_back(USER, staff="lucia")
    meta_says(bot, "dos")
    assert bodies(meta) == ["echo: dos"]
    assert bot.handoff.state(USER).mode == "bot"


def test_an_idle_take_over_goes_back_to_the_bot_by_itself(bot: Bot, meta: FakeProvider) -> None:
    clock = Clock()
    bot.handoff.clock = clock
    bot.handoff.idle = timedelta(minutes=30)
    changes: list[HandoffState] = []
    bot.handoff.on_change(changes.append)
    bot.handoff.take_over(USER, staff="lucia")
    clock.advance(minutes=20)
    bot.handoff.touch(USER, staff="lucia")  # staff activity restarts the idle clock
    clock.advance(minutes=20)
    meta_says(bot, "sigo aquí")
    assert bodies(meta) == []
    clock.advance(minutes=11)
    meta_says(bot, "¿hola?")
    assert bodies(meta) == ["echo: ¿hola?"]
    assert [(c.mode, c.reason) for c in changes] == [("human", None), ("bot", "idle")]


def test_the_idle_time_comes_from_the_settings(store: Any, meta: FakeProvider) -> None:
    bot = Bot(make_settings(whatsapp_handoff_idle_seconds=0), store=store, providers={"meta": meta})
    assert bot.handoff.idle is None
    bot = Bot(make_settings(whatsapp_handoff_idle_seconds=90), store=store, providers={"meta": meta})
    assert bot.handoff.idle == timedelta(seconds=90)


def test_a_request_for_a_person_notifies_staff_once(bot: Bot, meta: FakeProvider) -> None:
    requests: list[HandoffState] = []
    bot.handoff.on_request(requests.append)
    bot.handoff.request(USER, "quiere hablar con una persona")
    bot.handoff.request(USER, "otra vez")
    assert [(r.user, r.mode, r.reason) for r in requests] == [
        (USER, "requested", "quiere hablar con una persona")
    ]
    meta_says(bot, "¿y?")  # a request alone does not silence the bot
    assert bodies(meta) == ["echo: ¿y?"]
    bot.handoff.take_over(USER, staff="lucia")
    bot.handoff.request(USER, "de nuevo")
    assert len(requests) == 1


def test_a_failing_callback_does_not_lose_the_request(bot: Bot) -> None:
    def broken(state: HandoffState) -> None:
        raise RuntimeError("slack is down")

    bot.handoff.on_request(broken)
    assert bot.handoff.request(USER, "ayuda").mode == "requested"
    assert bot.handoff.state(USER).mode == "requested"


def test_the_agent_tool_flags_the_conversation_through_the_bot(bot: Bot) -> None:
    requests: list[HandoffState] = []
    bot.handoff.on_request(requests.append)
    answer = ask_for_human.invoke({"reason": "pide un reembolso"}, ToolContext(user_id=USER, store=bot.store))
    assert "person" in str(answer)
    assert bot.handoff.state(USER).mode == "requested"
    assert requests[0].reason == "pide un reembolso"


def test_request_human_without_a_bot_still_flags(store: Any) -> None:
    state = request_human(store, "+" + USER, "sin bot")
    assert state.mode == "requested" and state.user == USER
