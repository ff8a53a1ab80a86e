"""The core's conversation list (what the Flask console shows): one row per user and business
number, Meta's display number instead of its phone-number id, unanswered counts, search by number
with or without ``+``/spaces, by name and by text, media rebuilt from the log, plain-word errors."""

from __future__ import annotations

from typing import Any

import pytest

from eki_whatsapp import Bot, MemoryStore
from eki_whatsapp.conversations import e164, explain_error, history, list_conversations, media_refs
from eki_whatsapp.testing import meta_image, meta_text, twilio_media, twilio_text

from ..routing.fakes import FakeProvider
from .helpers import APP_SECRET, TWILIO_TOKEN, make_settings

URL = "https://bot.example.com/webhook/whatsapp/"
LUCIA = "5215512345678"
JOAO = "5511987654321"
BUSINESS = "14155238886"  # the same number on both providers


@pytest.fixture
def bot() -> Bot:
    return Bot(
        make_settings(whatsapp_webhook_url=URL),
        store=MemoryStore(),
        providers={
            "meta": FakeProvider("meta", "106540352242922"),
            "twilio": FakeProvider("twilio", BUSINESS),
        },
        inline=True,
    )


def post(bot: Bot, payload: Any) -> None:
    secret = APP_SECRET if payload.provider == "meta" else TWILIO_TOKEN
    assert bot.handle(payload.request(URL, secret=secret)).status == 200


def test_one_row_per_user_and_business_number_with_both_providers(bot: Bot) -> None:
    post(bot, meta_text("Hola", sender=LUCIA, profile_name="Lucía", display_phone_number=BUSINESS))
    post(bot, twilio_text("¿Siguen ahí?", sender=LUCIA, profile_name="Lucía", to="+" + BUSINESS))
    post(bot, twilio_text("Olá", sender=JOAO, profile_name="João"))
    rows = list_conversations(bot)
    assert [(c.number, c.name) for c in rows] == [("+" + JOAO, "João"), ("+" + LUCIA, "Lucía")]
    lucia = rows[1]
    assert lucia.business == BUSINESS and sorted(lucia.providers) == ["meta", "twilio"]
    assert lucia.unanswered == 2 and lucia.last_text == "¿Siguen ahí?" and lucia.window_open()
    bot.send(LUCIA, "Sí, aquí estamos", provider="meta")
    lucia = list_conversations(bot, search=LUCIA)[0]
    # The reply left from Meta's phone-number id; it is shown under the business number.
    assert (lucia.unanswered, lucia.last_direction, lucia.business) == (0, "out", BUSINESS)
    assert [r.text for r in history(bot, LUCIA, BUSINESS)] == ["Hola", "¿Siguen ahí?", "Sí, aquí estamos"]


@pytest.mark.parametrize(
    "query", ["+52 1 55 1234 5678", "5215512345678", "whatsapp:+5215512345678", "lucía", "SIGUEN"]
)
def test_search_by_number_name_or_text(bot: Bot, query: str) -> None:
    post(bot, meta_text("Hola", sender=LUCIA, profile_name="Lucía"))
    post(bot, meta_text("¿Siguen ahí?", sender=LUCIA))
    post(bot, twilio_text("Olá", sender=JOAO, profile_name="João"))
    assert [c.user for c in list_conversations(bot, search=query)] == [LUCIA]


def test_state_columns_follow_handoff_and_opt_out(bot: Bot) -> None:
    post(bot, meta_text("Hola", sender=LUCIA))
    bot.handoff.take_over(LUCIA, staff="ana")
    post(bot, twilio_text("BAJA", sender=JOAO))
    rows = {c.user: c for c in list_conversations(bot)}
    assert rows[LUCIA].mode == "human" and not rows[LUCIA].opted_out
    assert rows[JOAO].opted_out and rows[JOAO].unanswered == 0  # the confirmation answered it


def test_media_is_rebuilt_from_the_log_row(bot: Bot) -> None:
    post(bot, meta_image(media_id="1234567890", sender=LUCIA, caption="foto"))
    post(
        bot,
        twilio_media(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg", sender=JOAO
        ),
    )
    meta_row = bot.store.list_log(user=LUCIA)[0]
    twilio_row = bot.store.list_log(user=JOAO)[0]
    assert [(m.provider, m.id) for m in media_refs(meta_row)] == [("meta", "1234567890")]
    assert [(m.provider, m.mime_type) for m in media_refs(twilio_row)] == [("twilio", "image/jpeg")]


def test_errors_in_plain_words() -> None:
    assert "24 horas" in (explain_error(131047, language="es") or "")
    assert "24 hours" in (explain_error(63016, language="en-us") or "")
    assert "baja" in (explain_error(None, error="OptedOut", language="es") or "")
    assert explain_error(99999, language="pt") == "Não entregue (erro 99999)."
    assert explain_error(None) is None
    assert (
        e164("5215512345678") == "+5215512345678"
        and e164("US.13491208655302741918") == "US.13491208655302741918"
    )
