"""WHATSAPP_ENV=production: no unsigned post is handled, whichever providers the policy names or
the bot is given (issue 12)."""

from __future__ import annotations

import pytest

from eki_whatsapp import Bot, ConfigError, MemoryStore
from eki_whatsapp.testing import payloads

from .helpers import make_settings, meta_request


def test_unsigned_meta_posts_are_refused_in_production_with_twilio_only() -> None:
    settings = make_settings(whatsapp_env="production", whatsapp_provider="twilio", meta_app_secret=None)
    bot = Bot(settings, store=MemoryStore(), inline=True)
    handled: list[object] = []
    bot.on_message(handled.append)

    response = bot.handle(meta_request(payloads.meta_text("hi").body, secret=None))

    assert response.status == 403 and b"META_APP_SECRET" in response.body
    assert handled == [] and bot.store.list_log() == []
    bot.close()


def test_unsigned_meta_posts_are_still_accepted_in_development() -> None:
    bot = Bot(make_settings(meta_app_secret=None), store=MemoryStore(), providers={}, inline=True)
    handled: list[object] = []
    bot.on_message(handled.append)

    assert bot.handle(meta_request(payloads.meta_text("hi").body, secret=None)).status == 200
    assert len(handled) == 1
    bot.close()


@pytest.mark.parametrize(
    ("missing", "variable"),
    [({"meta_app_secret": None}, "META_APP_SECRET"), ({"twilio_auth_token": None}, "TWILIO_AUTH_TOKEN")],
)
def test_a_bot_given_its_providers_still_enforces_production(missing: dict[str, None], variable: str) -> None:
    settings = make_settings(whatsapp_env="production", **missing)

    with pytest.raises(ConfigError, match=variable):
        Bot(settings, store=MemoryStore(), providers={})


def test_a_bot_given_its_providers_needs_no_credentials_of_its_own() -> None:
    settings = make_settings(whatsapp_env="production", meta_whatsapp_token=None, twilio_account_sid=None)
    Bot(settings, store=MemoryStore(), providers={}).close()  # secrets set: it starts
