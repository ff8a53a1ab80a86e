"""Opt-out in the core, with no web framework: keywords from signed webhooks of both providers,
one confirmation, sends refused before any request, exempt sends, re-subscription, staff blocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot, MemoryStore, OptedOut, SQLiteStore
from eki_whatsapp.messages import Text
from eki_whatsapp.optout import normalize_keyword
from eki_whatsapp.testing import meta_text, twilio_text

from ..routing.fakes import FakeProvider
from .helpers import APP_SECRET, TWILIO_TOKEN, make_settings

URL = "https://bot.example.com/webhook/whatsapp/"
META_USER = "5215512345678"
TWILIO_USER = "5511987654321"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    s = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "optout.sqlite3")
    yield s
    s.close()


@pytest.fixture
def providers() -> dict[str, FakeProvider]:
    return {"meta": FakeProvider("meta", "106540352242922"), "twilio": FakeProvider("twilio", "14155238886")}


def make_bot(store: Any, providers: dict[str, FakeProvider], **settings: Any) -> Bot:
    bot = Bot(
        make_settings(whatsapp_webhook_url=URL, **settings), store=store, providers=providers, inline=True
    )
    answered: list[str] = []
    bot.answered = answered  # type: ignore[attr-defined]

    @bot.on_message
    def echo(message: Any, ctx: Any) -> None:
        answered.append(message.text)
        ctx.reply(f"echo: {message.text}")

    return bot


def meta_says(bot: Bot, text: str, user: str = META_USER) -> None:
    assert bot.handle(meta_text(text, sender=user).request(URL, secret=APP_SECRET)).status == 200


def twilio_says(bot: Bot, text: str, user: str = TWILIO_USER) -> None:
    assert bot.handle(twilio_text(text, sender=user).request(URL, secret=TWILIO_TOKEN)).status == 200


def texts(provider: FakeProvider) -> list[str]:
    return [m.body for _, m in provider.sent if isinstance(m, Text)]


@pytest.mark.parametrize(
    ("word", "confirmation"),
    [("BAJA", "no te enviaremos"), ("stop", "not get more messages"), ("Parar!", "não receberá")],
)
def test_a_keyword_opts_out_and_is_confirmed_in_its_language(
    store: Any, providers: dict[str, FakeProvider], word: str, confirmation: str
) -> None:
    bot = make_bot(store, providers)
    meta_says(bot, word)
    assert bot.optouts.is_opted_out(META_USER)
    assert len(texts(providers["meta"])) == 1 and confirmation in texts(providers["meta"])[0]
    assert bot.answered == []  # type: ignore[attr-defined]  # the bot's handler did not run


def test_the_confirmation_is_sent_once(store: Any, providers: dict[str, FakeProvider]) -> None:
    bot = make_bot(store, providers)
    twilio_says(bot, "ALTO")
    twilio_says(bot, "alto")
    twilio_says(bot, "¿hola?")  # other messages of an opted-out user are logged, not answered
    assert len(providers["twilio"].sent) == 1
    assert [r.text for r in store.list_log(direction="in")] == ["¿hola?", "alto", "ALTO"]


def test_sends_to_an_opted_out_user_are_refused_before_any_request(
    store: Any, providers: dict[str, FakeProvider]
) -> None:
    bot = make_bot(store, providers)
    meta_says(bot, "CANCELAR")
    attempts = providers["meta"].attempts + providers["twilio"].attempts
    ledger = store.ledger()
    with pytest.raises(OptedOut) as caught:
        bot.send("+52 1 55 1234 5678", "Promo de primavera")
    assert caught.value.user == META_USER and "WHATSAPP_OPTIN_KEYWORDS" in str(caught.value)
    assert providers["meta"].attempts + providers["twilio"].attempts == attempts  # no request
    assert store.ledger() == ledger  # nothing priced
    assert len(store.list_log(direction="out")) == 1  # only the confirmation


def test_a_keyed_send_to_an_opted_out_user_is_refused_and_an_earlier_one_is_returned(
    store: Any, providers: dict[str, FakeProvider]
) -> None:
    # The receipt of the key and the user's opt-out are read together: a send made before the
    # opt-out keeps its receipt (no request, no refusal); a new one is refused.
    bot = make_bot(store, providers)
    meta_says(bot, "hola")  # the window is open
    first = bot.send(META_USER, "Tu pedido salió", provider="meta", idempotency_key="order-1")
    meta_says(bot, "STOP")
    attempts = providers["meta"].attempts
    again = bot.send(META_USER, "Tu pedido salió", provider="meta", idempotency_key="order-1")
    assert again.message_id == first.message_id and providers["meta"].attempts == attempts
    with pytest.raises(OptedOut):
        bot.send(META_USER, "Tu pedido llegó", provider="meta", idempotency_key="order-2")
    assert providers["meta"].attempts == attempts


def test_an_exempt_message_still_goes_out(store: Any, providers: dict[str, FakeProvider]) -> None:
    bot = make_bot(store, providers)
    meta_says(bot, "STOP")
    receipt = bot.send(META_USER, "Aviso legal: tu contrato cambia.", exempt=True, provider="meta")
    assert receipt.provider == "meta"
    assert texts(providers["meta"])[-1] == "Aviso legal: tu contrato cambia."


def test_a_start_keyword_subscribes_again(store: Any, providers: dict[str, FakeProvider]) -> None:
    bot = make_bot(store, providers)
    twilio_says(bot, "BAJA")
    twilio_says(bot, "ALTA")
    assert not bot.optouts.is_opted_out(TWILIO_USER)
    assert "Bienvenido" in texts(providers["twilio"])[-1]
    twilio_says(bot, "hola")
    assert texts(providers["twilio"])[-1] == "echo: hola"
    bot.send(TWILIO_USER, "ok", provider="twilio")


def test_start_without_an_opt_out_is_an_ordinary_message(
    store: Any, providers: dict[str, FakeProvider]
) -> None:
    bot = make_bot(store, providers)
    meta_says(bot, "START")
    assert texts(providers["meta"]) == ["echo: START"]


def test_keywords_are_configurable_and_only_whole_messages_count(
    store: Any, providers: dict[str, FakeProvider]
) -> None:
    bot = make_bot(store, providers, whatsapp_optout_keywords="NO MAS", whatsapp_optout_confirmation="Hecho.")
    meta_says(bot, "stop")  # not configured any more
    meta_says(bot, "no quiero que pares")
    assert not bot.optouts.is_opted_out(META_USER)
    meta_says(bot, "No más")
    assert bot.optouts.is_opted_out(META_USER)
    assert texts(providers["meta"])[-1] == "Hecho."


def test_an_empty_keyword_list_turns_keywords_off(store: Any, providers: dict[str, FakeProvider]) -> None:
    bot = make_bot(store, providers, whatsapp_optout_keywords="", whatsapp_optin_keywords="")
    meta_says(bot, "STOP")
    assert not bot.optouts.is_opted_out(META_USER)
    assert texts(providers["meta"]) == ["echo: STOP"]


def test_staff_block_and_unblock(store: Any, providers: dict[str, FakeProvider]) -> None:
    bot = make_bot(store, providers)
    meta_says(bot, "hola")
    bot.optouts.block("whatsapp:+5215512345678", by="staff:lucia")
    state = bot.optouts.state(META_USER)
    assert state is not None and state.by == "staff:lucia" and state.keyword is None
    with pytest.raises(OptedOut):
        bot.send(META_USER, "hola")
    bot.optouts.unblock(META_USER)
    bot.send(META_USER, "hola", provider="meta")


def test_the_opt_out_list_is_shared_through_the_store(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    one, two = SQLiteStore(path), SQLiteStore(path)
    try:
        first = make_bot(one, {"meta": FakeProvider("meta", "106540352242922")})
        second = make_bot(two, {"meta": FakeProvider("meta", "106540352242922")})
        meta_says(first, "BAJA")
        with pytest.raises(OptedOut):
            second.send(META_USER, "hola")
    finally:
        one.close()
        two.close()


@pytest.mark.asyncio
async def test_the_async_face_refuses_too(store: Any, providers: dict[str, FakeProvider]) -> None:
    bot = make_bot(store, providers)
    bot.optouts.block(META_USER)
    with pytest.raises(OptedOut):
        await bot.send_async(META_USER, "hola")
    assert providers["meta"].attempts == 0


def test_keyword_normalisation() -> None:
    assert normalize_keyword("  ¡Baja! ") == "BAJA"
    assert normalize_keyword("cancelár.") == "CANCELAR"
    assert normalize_keyword(None) == ""
