"""Concurrency, bounds and round trips of arbitrary text."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eki_whatsapp import optout, security
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, _http, meta_text, serve_bot, twilio_text

from .conftest import APP_SECRET, TWILIO_TOKEN


def test_concurrent_sends_are_all_recorded_and_every_status_is_posted(stack):
    def send(i: int) -> str:
        body = {
            "messaging_product": "whatsapp",
            "to": f"1650555{i:04d}",
            "type": "text",
            "text": {"body": str(i)},
        }
        with httpx.Client(headers={"Authorization": f"Bearer {stack.graph.token}"}) as c:
            return c.post(stack.graph.messages_url, json=body).json()["messages"][0]["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(send, range(24)))
    assert len(set(ids)) == 24 and {m.id for m in stack.graph.sent} == set(ids)
    stack.flush()
    assert len(stack.graph.webhooks) == 72 and all(d.ok for d in stack.graph.webhooks)
    for wamid in ids:  # per message, statuses arrive in order
        assert [s.status for s in stack.bot.store.statuses("meta", wamid)] == ["sent", "delivered", "read"]


def test_connections_beyond_the_bound_get_503(monkeypatch):
    monkeypatch.setattr(_http, "MAX_CONNECTIONS", 2)
    with FakeTwilioAPI() as fake:
        idle = [socket.create_connection(("127.0.0.1", fake.port)) for _ in range(2)]
        try:
            # the two idle connections hold both slots until they are closed
            r = httpx.get(fake.base_url + "/2010-04-01/Accounts/x.json")
            assert (r.status_code, r.text) == (503, "server busy")
        finally:
            for s in idle:
                s.close()


@pytest.mark.asyncio
async def test_flush_async(graph, twilio_api):
    from .conftest import Stack

    stack = Stack(graph, twilio_api)
    try:

        @stack.bot.on_message
        def reply(message, ctx):
            ctx.reply("ok")

        response = await meta_text("hola").post_async(stack.server.url, secret=APP_SECRET)
        assert response.status_code == 200
        assert await graph.flush_async()
        assert [d.status for d in graph.webhooks] == ["sent", "delivered", "read"]
    finally:
        stack.close()


texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, name=texts)
def test_any_text_round_trips_through_the_bot(parse_bot, text, name):
    bot, seen = parse_bot
    # A text that reads as an opt-out keyword (NFKD turns "ｅｎｄ" into END) is answered by the
    # opt-out list, not by the handlers, and opts the sender out for the examples after it.
    assume(optout.normalize_keyword(text) not in bot.optouts.stop_keywords)
    meta = meta_text(text, profile_name=name)
    assert meta.body.isascii()  # escaped like Meta
    assert security.verify_meta_signature(APP_SECRET, meta.body, meta.signature(APP_SECRET))
    assert bot.handle(meta.request(secret=APP_SECRET)).status == 200
    assert (seen.messages[-1].text, seen.messages[-1].profile_name) == (text, name)
    twilio = twilio_text(text, profile_name=name)
    assert bot.handle(twilio.request(secret=TWILIO_TOKEN)).status == 200
    assert seen.messages[-1].text == text


def test_serve_bot_on_another_loopback_address(parse_bot):
    bot, seen = parse_bot
    with serve_bot(bot, host="127.0.0.2") as server:
        assert server.url.startswith("http://127.0.0.2:")
        assert meta_text("x").post(server.url, secret=APP_SECRET).status_code == 200
    assert seen.messages[0].text == "x"


def test_fake_graph_on_a_fixed_port_can_restart_after_refuse():
    with FakeGraphAPI() as fake:
        port = fake.port
        fake.outage("refuse")
        assert not fake.listening
        fake.restore()
        assert fake.listening and fake.port == port
