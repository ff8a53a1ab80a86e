"""Benchmark: the Agent's turn vs a minimal hand-written loop on the bare openai SDK.

Each turn is one user message → one tool call → the final answer, with the OpenAI HTTP API
mocked at the HTTP layer (respx), so both sides pay the same SDK and HTTP costs and the
difference is the agent's own work (argument validation, memory load/save in the Store, usage
records, per-user locking, deadlines, logging). Every turn starts a new conversation on both
sides, and both send the same tool definition.

The headline compares an ``async def`` tool (awaited on the event loop by both sides). For
information it also compares a plain ``def`` tool: the Agent runs sync tools in a worker thread
(so a blocking tool cannot stall other users) while the bare loop calls it inline; that thread
hop is a fixed cost of tens to hundreds of microseconds depending on the machine's load.

    python bench/agent.py [--turns 2000]

Times are medians of per-turn times, the agent and the bare loop alternating turn by turn. The
headline ratio uses CPU time of the event-loop thread (``time.thread_time``): with the HTTP layer
mocked the turn is pure CPU work, and CPU time does not count the time other processes hold
the core, which otherwise dominates on a shared machine. Wall-clock medians are printed too.

Last line: ``agent: <ratio>x bare loop (target <= 1.2x) OK|BELOW``; exit status 1 when below target.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import openai
import respx

from eki_whatsapp.agent import Agent, tool
from eki_whatsapp.store import MemoryStore

TARGET = 1.2
MODEL = "gpt-4.1-mini"
SYSTEM = "You are the assistant of an online school. Answer briefly."
USER_TEXT = "How much does the Python course cost?"
ANSWER = "The Python course costs 30 €."


@tool(name="course_price")
async def course_price(course_id: str) -> dict[str, Any]:
    """Price of a course in euros.

    Args:
        course_id: the course id, e.g. "python".
    """
    return {"course_id": course_id, "eur": 30}


@tool(name="course_price")
def course_price_sync(course_id: str) -> dict[str, Any]:
    """Price of a course in euros.

    Args:
        course_id: the course id, e.g. "python".
    """
    return {"course_id": course_id, "eur": 30}


def _body(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764000000,
        "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
    }


TOOL_CALL = _body(
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "course_price", "arguments": '{"course_id": "python"}'},
            }
        ],
    }
)
FINAL = _body({"role": "assistant", "content": ANSWER})


def fake_openai(request: httpx.Request) -> httpx.Response:
    """Tool call first; the final answer once the tool result is in the conversation."""
    messages = json.loads(request.content)["messages"]
    return httpx.Response(200, json=FINAL if messages[-1]["role"] == "tool" else TOOL_CALL)


# --- the baseline: a minimal loop on the bare SDK ------------------------------------------------
# The same tool definition the Agent derives from ``course_price``, written by hand.
BARE_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "course_price",
            "description": "Price of a course in euros.",
            "parameters": {
                "type": "object",
                "properties": {
                    "course_id": {"type": "string", "description": 'the course id, e.g. "python".'}
                },
                "required": ["course_id"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
]


async def bare_turn(client: openai.AsyncOpenAI, text: str, function: Callable[..., Any]) -> str:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    response = await client.chat.completions.create(model=MODEL, messages=messages, tools=BARE_TOOLS)
    message = response.choices[0].message
    while message.tool_calls:
        messages.append(message.model_dump(exclude_none=True))
        for tc in message.tool_calls:
            result = function(**json.loads(tc.function.arguments))  # type: ignore[union-attr]
            if isinstance(result, Awaitable):
                result = await result
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": json.dumps(result)})
        response = await client.chat.completions.create(model=MODEL, messages=messages, tools=BARE_TOOLS)
        message = response.choices[0].message
    return message.content or ""


Timings = dict[str, list[float]]


async def compare(
    client: openai.AsyncOpenAI, agent: Agent, function: Any, turns: int
) -> tuple[Timings, Timings]:
    """Per-turn wall and CPU times of (agent, bare loop), alternating turn by turn."""
    agent_times: Timings = {"wall": [], "cpu": []}
    bare_times: Timings = {"wall": [], "cpu": []}
    for i in range(turns + 20):
        order = (True, False) if i % 2 else (False, True)
        for use_agent in order:
            wall, cpu = time.perf_counter(), time.thread_time()
            if use_agent:
                reply = await agent.respond(f"user-{i}", USER_TEXT)
                assert reply.text == ANSWER and reply.tool_calls[0].ok, reply
            else:
                assert await bare_turn(client, USER_TEXT, function) == ANSWER
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            if i >= 20:  # the first turns warm up caches and worker threads
                target = agent_times if use_agent else bare_times
                target["wall"].append(wall)
                target["cpu"].append(cpu)
    return agent_times, bare_times


async def main(turns: int) -> int:
    with respx.mock(assert_all_called=False) as router:
        router.post("https://api.openai.com/v1/chat/completions").mock(side_effect=fake_openai)
        client = openai.AsyncOpenAI(api_key="sk-bench", http_client=httpx.AsyncClient(), max_retries=0)

        def make(t: Any) -> Agent:
            return Agent(SYSTEM, [t], client=client, store=MemoryStore(), whatsapp_hint=False)

        gc.collect()
        agent_times, bare_times = await compare(client, make(course_price), course_price.func, turns)
        sync_agent, sync_bare = await compare(
            client, make(course_price_sync), course_price_sync.func, turns // 2
        )
        await client.close()

    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    ratio = median_ms(agent_times["cpu"]) / median_ms(bare_times["cpu"])
    wall_ratio = median_ms(agent_times["wall"]) / median_ms(bare_times["wall"])
    sync_ratio = median_ms(sync_agent["wall"]) / median_ms(sync_bare["wall"])
    print(f"{turns} turns each (medians), the agent and the bare loop alternating turn by turn")
    print("                                        CPU ms/turn   wall ms/turn")
    for label, times in (
        ("async tool  bare openai loop:", bare_times),
        ("async tool  eki Agent:", agent_times),
        ("sync tool   bare loop (inline call):", sync_bare),
        ("sync tool   eki Agent (worker thread):", sync_agent),
    ):
        print(f"{label:40s}{median_ms(times['cpu']):8.3f}     {median_ms(times['wall']):8.3f}")
    print(f"async tool, wall clock: {wall_ratio:.2f}x (noisy on a shared machine)")
    print(f"sync tool, wall clock: {sync_ratio:.2f}x (includes the worker-thread hop; informational)")
    verdict = "OK" if ratio <= TARGET else "BELOW"
    print(f"agent: {ratio:.2f}x bare loop (target <= {TARGET}x) {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.turns)))
