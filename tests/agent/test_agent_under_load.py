"""Hung tools and fair concurrency (issue 17, items 1 and 5), through the real webhook.

Signed Meta webhooks go into a Bot whose handlers run after the ack (the production mode), the
agent talks to the local OpenAI-compatible server and replies go out through the fake Graph API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import openai
import pytest

from eki_whatsapp import Bot, Settings
from eki_whatsapp.agent import Agent, tool
from eki_whatsapp.store import MemoryStore
from eki_whatsapp.testing import FakeGraphAPI, FakeOpenAI, ModelRequest, Step, meta_text

APP_SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI(app_secret=APP_SECRET, auto_status=()) as fake:
        yield fake


def make_bot(graph: FakeGraphAPI, **fields: object) -> Bot:
    settings = Settings(
        _env_file=None,
        whatsapp_provider="meta",
        whatsapp_store_url="memory://",
        **graph.settings_fields(),
        **fields,
    )  # type: ignore[arg-type]
    return Bot(settings, store=MemoryStore(), inline=False)


def model_client(server: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=server.url, max_retries=0)


def post(bot: Bot, user: str, text: str) -> None:
    assert bot.handle(meta_text(text, sender=user).request(secret=APP_SECRET)).status == 200


def answers(graph: FakeGraphAPI, user: str) -> list[str | None]:
    return [m.text for m in graph.sent if m.to == user]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_hung_sync_tools_do_not_stall_other_users(graph, api, caplog) -> None:
    hang = threading.Event()

    @tool
    def stock_level(sku: str) -> str:
        """Stock of a product in the warehouse system (which hangs today)."""
        hang.wait(30)
        return "12"

    @tool
    def opening_hours() -> str:
        """Opening hours."""
        return "9-18"

    def responder(request: ModelRequest) -> Step:
        if request.ends_with_tool_result:
            return FakeOpenAI.answer("tool says: " + request.tool_results[-1])
        text = request.last_user_text
        if text.startswith("stock"):
            return FakeOpenAI.tools(("stock_level", {"sku": text}))
        if text.startswith("hours"):
            return FakeOpenAI.tools(("opening_hours", {}))
        return FakeOpenAI.answer("echo: " + text)

    bot = make_bot(graph, agent_tool_threads=4)  # AGENT_TOOL_THREADS
    with FakeOpenAI(responder) as server, caplog.at_level(logging.INFO, logger="eki_whatsapp.agent"):
        agent = Agent(
            "Shop.", [stock_level, opening_hours], client=model_client(server), api=api, tool_timeout=0.5
        )
        bot.on_message(agent)
        try:
            for i in range(8):  # twice as many hung calls as tool threads
                post(bot, f"1650555{i:04d}", f"stock sku-{i}")
            post(bot, "447700900123", "hola")
            post(bot, "447700900124", "hours please")
            assert bot.drain(timeout=20)
            post(bot, "16505559999", "stock sku-9")  # its share of the threads is stuck now
            assert bot.drain(timeout=20)
            assert agent.stuck_tool_calls == 2
        finally:
            hang.set()

        timed_out = [answers(graph, f"1650555{i:04d}")[0] or "" for i in range(8)]
        assert all("did not finish within 0.5 seconds" in r for r in timed_out)  # each at its timeout
        assert answers(graph, "447700900123") == ["echo: hola"]
        assert answers(graph, "447700900124") == ["tool says: 9-18"]  # another sync tool still runs
        assert "is not answering right now" in (answers(graph, "16505559999")[0] or "")  # refused at once
        assert "2 of 4 tool threads stuck (AGENT_TOOL_THREADS)" in caplog.text
    bot.close()


def test_the_configured_cap_is_what_runs_not_the_handler_workers(graph) -> None:
    bot = make_bot(graph, whatsapp_handler_workers=2)
    with FakeOpenAI() as server:
        bot.on_message(Agent("x", client=model_client(server), max_concurrent_calls=16))
        server.hold()
        try:
            for i in range(20):
                post(bot, f"1650555{i:04d}", f"hi {i}")
            assert server.wait_for(lambda s: s.in_flight == 16), f"in flight: {server.in_flight}"
            assert server.max_in_flight == 16  # 16 model calls with 2 handler workers
        finally:
            server.release()
        assert bot.drain(timeout=20)
    assert len(graph.sent) == 20
    bot.close()


def test_one_users_burst_does_not_delay_another_user(graph) -> None:
    bot = make_bot(graph, whatsapp_handler_workers=2)
    with FakeOpenAI() as server:
        bot.on_message(Agent("x", client=model_client(server)))
        server.hold()
        try:
            for i in range(8):
                post(bot, "16505550001", f"burst {i}")
            post(bot, "16505550002", "just one question")
            # The other user's turn reaches the model while the burst's first turn is held:
            # the burst holds no worker and no place in the model queue beyond its own turn.
            assert server.wait_for(lambda s: s.in_flight == 2)
        finally:
            server.release()
        assert bot.drain(timeout=20)
    assert answers(graph, "16505550002") == ["echo: just one question"]
    # The rest of the burst is merged into later turns (how many depends on timing): every
    # message answered once, in order, none lost or repeated.
    burst = answers(graph, "16505550001")
    assert burst[0] == "echo: burst 0" and len(burst) < 8
    assert "\n".join(a.removeprefix("echo: ") for a in burst) == "\n".join(f"burst {i}" for i in range(8))
    bot.close()
