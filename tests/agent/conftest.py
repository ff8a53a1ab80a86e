"""Fixtures for the agent tests: the OpenAI HTTP API mocked with respx, the local fake OpenAI
server (Chat Completions and Responses), a scripted model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
import respx

from eki_whatsapp.agent import ModelResponse, ModelUsage, ToolCall, ToolSpec
from eki_whatsapp.store import MemoryStore
from eki_whatsapp.testing import FakeOpenAI

OPENAI = "https://api.openai.com/v1"


def call(name: str, arguments: Any, call_id: str) -> dict[str, Any]:
    """A tool call as the Chat Completions API returns it."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def completion(
    content: str | None = None,
    tool_calls: Sequence[dict[str, Any]] = (),
    *,
    prompt: int = 50,
    completion_tokens: int = 10,
    cached: int = 0,
    model: str = "gpt-4.1-mini-2025-04-14",
) -> httpx.Response:
    """A Chat Completions response body (wire shape of POST /v1/chat/completions)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1764000000,
            "model": model,
            "choices": [
                {"index": 0, "finish_reason": "tool_calls" if tool_calls else "stop", "message": message}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        },
    )


def sent(route: respx.Route, index: int = -1) -> dict[str, Any]:
    """The JSON body of a request the route received."""
    return json.loads(route.calls[index].request.content)


@pytest.fixture
def openai_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=OPENAI, assert_all_called=False) as router:
        yield router


@pytest_asyncio.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(api_key="sk-test-not-a-real-key", http_client=httpx.AsyncClient(), max_retries=0)
    yield c
    await c.close()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


class ScriptedModel:
    """A :class:`ChatModel` that answers from a script and can hold calls until released.

    Used where the HTTP layer is not the point (queuing, concurrency caps).
    """

    offline = False
    name = "scripted"

    def __init__(self, answer: Any = None, *, hold: bool = False) -> None:
        self.answer = answer or (lambda messages: f"echo: {messages[-1]['content']}")
        self.requests: list[list[dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def complete(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[ToolSpec],
        *,
        tool_choice: str = "auto",
        parallel_tool_calls: bool = True,
    ) -> ModelResponse:
        self.requests.append([dict(m) for m in messages])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.entered.set()
        try:
            await self.release.wait()
            result = self.answer(messages)
        finally:
            self.in_flight -= 1
        if isinstance(result, ModelResponse):
            return result
        if isinstance(result, ToolCall):
            return ModelResponse(None, (result,), ModelUsage(10, 1), self.name)
        return ModelResponse(str(result), (), ModelUsage(10, 1), self.name)

    async def aclose(self) -> None:
        return None


# --- the local OpenAI-compatible server (both APIs) -------------------------------------------------
@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> str:
    """Each scenario runs against both wire formats."""
    return str(request.param)


@pytest_asyncio.fixture
async def fake_client(fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(
        api_key="sk-test-not-a-real-key",
        base_url=fake_openai.url,
        http_client=httpx.AsyncClient(),
        max_retries=0,
    )
    yield c
    await c.close()
