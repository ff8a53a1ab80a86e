"""Meta's GET verification handshake (docs/wire.md §1)."""

from __future__ import annotations

import logging

import pytest

from eki_whatsapp import Bot, MemoryStore, WebhookRequest

from .helpers import VERIFY_TOKEN, make_settings


def challenge(bot: Bot, query: str) -> tuple[int, bytes, str | None]:
    response = bot.handle(WebhookRequest("GET", f"https://bot.example.com/webhook/whatsapp/?{query}"))
    return response.status, response.body, response.content_type


def test_matching_token_echoes_challenge_verbatim(bot: Bot) -> None:
    status, body, ctype = challenge(
        bot, f"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
    )
    assert (status, body) == (200, b"1158201444")
    assert ctype is not None and ctype.startswith("text/plain")


def test_challenge_is_not_converted(bot: Bot) -> None:
    status, body, _ = challenge(
        bot, f"hub.mode=subscribe&hub.challenge=00042abc&hub.verify_token={VERIFY_TOKEN}"
    )
    assert (status, body) == (200, b"00042abc")


def test_query_as_mapping_works_too(bot: Bot) -> None:
    req = WebhookRequest(
        "GET",
        "https://bot.example.com/webhook/whatsapp/",
        query={"hub.mode": "subscribe", "hub.challenge": "77", "hub.verify_token": VERIFY_TOKEN},
    )
    response = bot.handle(req)
    assert (response.status, response.body) == (200, b"77")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong", "does not match META_VERIFY_TOKEN"),
        (f"hub.mode=unsubscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}", "hub.mode"),
        ("hub.mode=subscribe&hub.challenge=1", "does not match META_VERIFY_TOKEN"),
    ],
)
def test_mismatch_is_403_and_logged_without_the_token(
    bot: Bot, caplog: pytest.LogCaptureFixture, query: str, reason: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="eki_whatsapp"):
        status, body, _ = challenge(bot, query)
    assert status == 403
    assert reason in body.decode()
    assert reason in caplog.text
    assert VERIFY_TOKEN not in caplog.text and VERIFY_TOKEN not in body.decode()
    assert "wrong" not in caplog.text


def test_no_verify_token_configured_is_403_naming_the_setting(caplog: pytest.LogCaptureFixture) -> None:
    bot = Bot(make_settings(meta_verify_token=None), store=MemoryStore(), providers={})
    status, body, _ = challenge(bot, "hub.mode=subscribe&hub.challenge=1&hub.verify_token=x")
    assert status == 403
    assert b"META_VERIFY_TOKEN is not set" in body


def test_missing_challenge_is_400(bot: Bot) -> None:
    status, _, _ = challenge(bot, f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}")
    assert status == 400


def test_plain_get_without_hub_params_is_400(bot: Bot) -> None:
    status, body, _ = challenge(bot, "foo=bar")
    assert status == 400
    assert b"hub." in body
