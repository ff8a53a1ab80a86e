"""serve_bot: raw bytes, full URL, headers and query reach Bot.handle; the response comes back."""

from __future__ import annotations

import httpx
import pytest

from eki_whatsapp import Bot, MemoryStore
from eki_whatsapp.testing import meta_text, serve_bot, twilio_text

from .conftest import APP_SECRET, TWILIO_TOKEN, Recorder, settings_for


@pytest.fixture
def served():
    bot = Bot(
        settings_for(meta_verify_token="my-verify-token", whatsapp_max_body_bytes=4096),
        store=MemoryStore(),
        providers={},
        inline=True,
    )
    seen = Recorder(bot)
    server = serve_bot(bot)
    yield server, seen
    server.close()
    bot.close()


def test_meta_challenge_over_http(served):
    server, _ = served
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "my-verify-token"}
    r = httpx.get(server.url, params=params)
    assert (r.status_code, r.text) == (200, "1158201444")
    assert r.headers["content-type"].startswith("text/plain")
    assert httpx.get(server.url, params={**params, "hub.verify_token": "nope"}).status_code == 403


def test_meta_post_over_http(served):
    server, seen = served
    r = meta_text("Olá 👋").post(server.url, secret=APP_SECRET)
    assert r.status_code == 200
    assert seen.messages[0].text == "Olá 👋"
    assert meta_text("x").post(server.url, secret="wrong").status_code == 403


def test_twilio_signature_covers_the_full_url_with_query(served):
    server, seen = served
    url = server.url + "?tenant=a%20b&x=1"
    r = twilio_text("oi").post(url, secret=TWILIO_TOKEN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert seen.messages[0].text == "oi"
    # signed over another URL than the one requested: refused
    assert twilio_text("oi").post(url, secret=TWILIO_TOKEN, signed_url=server.url).status_code == 403


def test_any_path_reaches_the_bot(served):
    server, seen = served
    assert meta_text("x").post(server.base_url + "/other/path", secret=APP_SECRET).status_code == 200
    assert len(seen.messages) == 1


def test_bodies_over_the_limit_are_refused(served):
    server, seen = served
    big = b"{" + b" " * 5000 + b"}"
    r = httpx.post(server.url, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    huge = b"x" * (4096 + 2048)
    assert httpx.post(server.url, content=huge).status_code == 413
    assert not seen.messages


def test_unknown_method_gets_the_bots_answer(served):
    server, _ = served
    r = httpx.put(server.url, content=b"x")
    assert r.status_code == 405


@pytest.mark.asyncio
async def test_post_async(served):
    server, seen = served
    r = await twilio_text("async").post_async(server.url, secret=TWILIO_TOKEN)
    assert r.status_code == 200 and seen.messages[0].text == "async"


def test_closed_server_refuses(served):
    server, _ = served
    url = server.url
    server.close()
    assert server.wait(0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
