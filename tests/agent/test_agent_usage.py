"""Usage accounting: tokens per call, per turn and per user, with estimated cost."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import httpx
import pytest

from eki_whatsapp.agent import DEFAULT_PRICES, Agent, ModelPrice, ModelUsage, PriceTable, tool

from .conftest import call, completion


@tool
def ping() -> str:
    """Ping."""
    return "pong"


PRICES = PriceTable({"gpt-4.1-mini": ModelPrice(Decimal("0.40"), Decimal("1.60"), Decimal("0.10"))})


def test_cost_uses_the_cached_price_for_cached_prompt_tokens() -> None:
    usage = ModelUsage(prompt_tokens=1_000_000, completion_tokens=500_000, cached_tokens=400_000)
    # 600k fresh * 0.40 + 400k cached * 0.10 + 500k out * 1.60 per million
    assert PRICES.cost("gpt-4.1-mini", usage) == Decimal("0.24") + Decimal("0.04") + Decimal("0.80")


def test_a_dated_snapshot_uses_its_base_model_price_and_unknown_models_have_no_cost() -> None:
    assert PRICES.price("gpt-4.1-mini-2025-04-14") is PRICES.price("gpt-4.1-mini")
    assert PRICES.cost("some-local-model", ModelUsage(10, 10)) is None
    assert DEFAULT_PRICES.price("gpt-4.1") is not DEFAULT_PRICES.price("gpt-4.1-mini-2025-04-14")
    table = PriceTable({"m": {"input": "1", "output": "2"}})
    assert table.cost("m", ModelUsage(1_000_000, 1_000_000, 500_000)) == Decimal(3)


@pytest.mark.asyncio
async def test_usage_is_recorded_per_call_per_turn_and_per_user(openai_api, client, store, caplog) -> None:
    openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("ping", {}, "p1")], prompt=1000, completion_tokens=20, cached=800),
            completion("pong!", prompt=1200, completion_tokens=5, cached=1000),
            completion("again", prompt=300, completion_tokens=3, cached=0),
        ]
    )
    agent = Agent("x", [ping], client=client, store=store, prices=PRICES)

    with caplog.at_level(logging.INFO, logger="eki_whatsapp.agent"):
        first = await agent.respond("frank", "ping", provider="meta")
    second = await agent.respond("grace", "hi")

    assert first.usage == ModelUsage(2200, 25, 1800)
    expected_first = PRICES.cost("gpt-4.1-mini", ModelUsage(1000, 20, 800)) + PRICES.cost(  # type: ignore[operator]
        "gpt-4.1-mini", ModelUsage(1200, 5, 1000)
    )
    assert first.cost == expected_first
    assert second.usage == ModelUsage(300, 3, 0)

    calls = store.usage(user="frank")
    assert [(r.prompt_tokens, r.completion_tokens, r.cached_tokens) for r in calls] == [
        (1000, 20, 800),
        (1200, 5, 1000),
    ]
    assert {r.turn_id for r in calls} == {first.turn_id}
    assert {r.model for r in calls} == {"gpt-4.1-mini-2025-04-14"}
    assert {r.provider for r in calls} == {"meta"}

    frank = agent.usage("frank")
    assert (frank.calls, frank.prompt_tokens, frank.completion_tokens, frank.cached_tokens) == (
        2,
        2200,
        25,
        1800,
    )
    assert frank.cost == expected_first
    everyone = agent.usage()
    assert everyone.calls == 3 and everyone.total_tokens == 2200 + 25 + 300 + 3
    assert f"turn {first.turn_id}" in caplog.text and "tokens=2200/25 cached=1800" in caplog.text


@pytest.mark.asyncio
async def test_without_a_price_table_no_cost_is_invented(openai_api, client, store) -> None:
    openai_api.post("/chat/completions").mock(return_value=completion("hi"))
    reply = await Agent("x", client=client, store=store).respond("henry", "hi")
    assert reply.cost is None
    assert store.usage(user="henry")[0].cost is None


@pytest.mark.asyncio
async def test_the_calls_of_a_turn_that_ends_in_a_fallback_are_recorded(openai_api, client, store) -> None:
    openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("ping", {}, "p1")], prompt=400, completion_tokens=7),
            httpx.Response(400, json={"error": {"message": "bad", "type": "invalid_request_error"}}),
        ]
    )
    reply = await Agent("x", [ping], client=client, store=store).respond("ivan", "ping")
    assert reply.fallback == "bad_request"
    assert [(r.prompt_tokens, r.turn_id) for r in store.usage(user="ivan")] == [(400, reply.turn_id)]


@pytest.mark.asyncio
async def test_the_calls_of_a_turn_cancelled_midway_are_recorded(openai_api, client, store) -> None:
    # A turn cancelled while a tool runs (the loop shut down) saves no history, but the model
    # call it made was billed: its usage is recorded.
    started, never = asyncio.Event(), asyncio.Event()

    @tool
    async def wait() -> str:
        """Wait."""
        started.set()
        await never.wait()
        return "done"

    openai_api.post("/chat/completions").mock(
        side_effect=[completion(tool_calls=[call("wait", {}, "w1")], prompt=400, completion_tokens=7)]
    )
    agent = Agent("x", [wait], client=client, store=store)
    turn = asyncio.ensure_future(agent.respond("judy", "wait"))
    await started.wait()
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert [r.prompt_tokens for r in store.usage(user="judy")] == [400]
    assert agent.history("judy", store=store) == []
