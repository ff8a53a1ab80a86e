"""The function-calling loop against the OpenAI HTTP API (mocked with respx)."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import openai
import pytest
import respx

from eki_whatsapp.agent import Agent, ToolContext, ToolError, tool
from eki_whatsapp.store import MemoryStore

from .conftest import OPENAI, call, completion, sent

SPANISH_USER = "34600111222"
ENGLISH_USER = "447700900123"


@tool
def find_course(topic: str) -> dict[str, str]:
    """Find the course that teaches a topic.

    Args:
        topic: what the user wants to learn.
    """
    return {"id": "py-101", "title": f"Course about {topic}"}


@tool
async def course_price(course_id: str, ctx: ToolContext) -> dict[str, object]:
    """Price of a course for this user.

    Args:
        course_id: the course id.
    """
    return {"course_id": course_id, "eur": 30, "user": ctx.user_id}


def make_agent(client: openai.AsyncOpenAI, store: MemoryStore, tools: list, **options: object) -> Agent:
    return Agent("You sell courses.", tools, client=client, store=store, **options)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_multi_round_tool_calls_feed_each_result_back(openai_api, client, store) -> None:
    route = openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("find_course", {"topic": "python"}, "call_a")]),
            completion(tool_calls=[call("course_price", {"course_id": "py-101"}, "call_b")]),
            completion("The **Python** course costs 30 €."),
        ]
    )
    agent = make_agent(client, store, [find_course, course_price])

    reply = await agent.respond(ENGLISH_USER, "How much is a python course?")

    assert reply.text == "The **Python** course costs 30 €."
    assert [r.name for r in reply.tool_calls] == ["find_course", "course_price"]
    assert all(r.ok for r in reply.tool_calls)
    assert reply.rounds == 3 and route.call_count == 3
    second = sent(route, 1)["messages"]
    assert second[-2]["tool_calls"][0]["id"] == "call_a"
    assert second[-1] == {
        "role": "tool",
        "tool_call_id": "call_a",
        "content": '{"id": "py-101", "title": "Course about python"}',
    }
    third = sent(route, 2)["messages"]
    assert third[-1]["tool_call_id"] == "call_b"
    assert f'"user": "{ENGLISH_USER}"' in third[-1]["content"]  # the context reached the tool
    first = sent(route, 0)
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][0]["content"].startswith("You sell courses.")
    assert {t["function"]["name"] for t in first["tools"]} == {"find_course", "course_price"}
    assert all(t["function"]["strict"] is True for t in first["tools"])
    assert "tool_choice" not in first  # "auto", the API default
    assert route.calls[0].request.headers["authorization"] == "Bearer sk-test-not-a-real-key"


@pytest.mark.asyncio
async def test_parallel_tool_calls_run_concurrently_and_results_keep_call_order(
    openai_api, client, store
) -> None:
    barrier = threading.Barrier(2, timeout=5)  # both sync tools must be inside at once
    both_async = {"a": asyncio.Event(), "b": asyncio.Event()}

    @tool
    def slow_sync(label: str) -> str:
        """Sync tool."""
        barrier.wait()
        return f"sync {label}"

    @tool
    async def slow_async(label: str) -> str:
        """Async tool."""
        both_async[label].set()
        other = "b" if label == "a" else "a"
        await asyncio.wait_for(both_async[other].wait(), 5)
        return f"async {label}"

    route = openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(
                tool_calls=[
                    call("slow_sync", {"label": "1"}, "c1"),
                    call("slow_async", {"label": "a"}, "c2"),
                    call("slow_sync", {"label": "2"}, "c3"),
                    call("slow_async", {"label": "b"}, "c4"),
                ]
            ),
            completion("all done"),
        ]
    )
    reply = await make_agent(client, store, [slow_sync, slow_async]).respond(ENGLISH_USER, "go")

    assert reply.text == "all done"
    results = [(m["tool_call_id"], m["content"]) for m in sent(route)["messages"] if m["role"] == "tool"]
    assert results == [("c1", "sync 1"), ("c2", "async a"), ("c3", "sync 2"), ("c4", "async b")]


@pytest.mark.asyncio
async def test_unknown_tool_is_reported_to_the_model(openai_api, client, store) -> None:
    route = openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("delete_everything", {}, "x1")]),
            completion("Sorry, I can't do that."),
        ]
    )
    reply = await make_agent(client, store, [find_course]).respond(ENGLISH_USER, "delete")

    assert reply.text == "Sorry, I can't do that."
    assert reply.tool_calls[0].error == "unknown_tool"
    result = sent(route)["messages"][-1]["content"]
    assert "no tool named 'delete_everything'" in result and "find_course" in result


@pytest.mark.asyncio
async def test_invalid_json_arguments_are_reported_to_the_model(openai_api, client, store) -> None:
    route = openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("find_course", '{"topic": "pyth', "x1")]),
            completion(tool_calls=[call("find_course", {"topic": "python"}, "x2")]),
            completion("Found it."),
        ]
    )
    reply = await make_agent(client, store, [find_course]).respond(ENGLISH_USER, "python")

    assert [r.error for r in reply.tool_calls] == ["invalid_arguments", None]
    assert "not valid JSON" in sent(route, 1)["messages"][-1]["content"]
    assert reply.text == "Found it."


@pytest.mark.asyncio
async def test_arguments_failing_validation_give_the_model_the_error(openai_api, client, store) -> None:
    route = openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("course_price", {"course": 12}, "x1")]),
            completion("Which course?"),
        ]
    )
    reply = await make_agent(client, store, [course_price]).respond(ENGLISH_USER, "price?")

    result = sent(route)["messages"][-1]["content"]
    assert result.startswith("Error: invalid arguments for course_price")
    assert "course_id: Field required" in result
    assert reply.tool_calls[0].error == "invalid_arguments"
    assert reply.fallback is None


@pytest.mark.asyncio
async def test_a_failing_tool_gives_the_model_a_short_error_and_the_log_the_details(
    openai_api, client, store, caplog
) -> None:
    @tool
    def broken(x: int) -> int:
        """Always fails."""
        raise RuntimeError("database password is hunter2")

    @tool
    def picky(x: int) -> int:
        """Refuses politely."""
        raise ToolError("that course is full")

    route = openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("broken", {"x": 1}, "b1"), call("picky", {"x": 1}, "p1")]),
            completion("Something went wrong, sorry."),
        ]
    )
    with caplog.at_level(logging.ERROR, logger="eki_whatsapp.agent"):
        reply = await make_agent(client, store, [broken, picky]).respond(ENGLISH_USER, "do it")

    broken_result, picky_result = (m["content"] for m in sent(route)["messages"][-2:])
    assert "broken failed (RuntimeError)" in broken_result
    assert "hunter2" not in broken_result
    assert picky_result == "Error from picky: that course is full"
    assert "hunter2" in caplog.text  # the traceback is in the log for the developer
    assert [r.error for r in reply.tool_calls] == ["failed", "tool_error"]
    assert reply.text == "Something went wrong, sorry."


@pytest.mark.asyncio
async def test_a_tool_that_times_out_is_abandoned(openai_api, client, store) -> None:
    never = asyncio.Event()

    @tool(timeout=0.05)
    async def hangs() -> str:
        """Never answers."""
        await never.wait()
        return "late"

    route = openai_api.post("/chat/completions").mock(
        side_effect=[completion(tool_calls=[call("hangs", {}, "h1")]), completion("It is slow today.")]
    )
    reply = await make_agent(client, store, [hangs]).respond(ENGLISH_USER, "wait")

    assert "did not finish within 0.05 seconds" in sent(route)["messages"][-1]["content"]
    assert reply.tool_calls[0].error == "timeout"
    assert reply.text == "It is slow today."


@pytest.mark.asyncio
async def test_repeated_identical_calls_are_not_run_again_and_end_the_loop(openai_api, client, store) -> None:
    runs: list[str] = []

    @tool
    def lookup(q: str) -> str:
        """Look up."""
        runs.append(q)
        return "nothing found"

    same = completion(tool_calls=[call("lookup", {"q": "x"}, "l1")])
    route = openai_api.post("/chat/completions").mock(
        side_effect=[same, same, same, completion("I could not find it.")]
    )
    reply = await make_agent(client, store, [lookup], max_tool_rounds=10).respond(ENGLISH_USER, "find x")

    assert runs == ["x"]
    assert [r.error for r in reply.tool_calls] == [None, "repeated", "repeated"]
    assert "already called with these same arguments" in sent(route, 2)["messages"][-1]["content"]
    assert sent(route, 3)["tool_choice"] == "none"  # forced to answer
    assert reply.text == "I could not find it."
    assert route.call_count == 4


@pytest.mark.asyncio
async def test_max_tool_rounds_forces_a_final_answer(openai_api, client, store) -> None:
    responses = [completion(tool_calls=[call("find_course", {"topic": f"t{i}"}, f"c{i}")]) for i in range(2)]
    route = openai_api.post("/chat/completions").mock(
        side_effect=[*responses, completion("Here is what I found.")]
    )
    reply = await make_agent(client, store, [find_course], max_tool_rounds=2).respond(ENGLISH_USER, "topics")

    assert [sent(route, i).get("tool_choice", "auto") for i in range(3)] == ["auto", "auto", "none"]
    assert reply.text == "Here is what I found."
    assert len(reply.tool_calls) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("user", "text", "response", "reason", "expected"),
    [
        (
            SPANISH_USER,
            "hola, ¿qué cursos hay?",
            httpx.Response(429, json={"error": {"message": "Rate limit"}}),
            "rate_limited",
            "Ahora mismo tengo muchas consultas",
        ),
        (
            ENGLISH_USER,
            "hello, which courses?",
            httpx.Response(429, json={"error": {"message": "quota"}}),
            "rate_limited",
            "I'm getting a lot of questions",
        ),
        (
            ENGLISH_USER,
            "hello",
            httpx.Response(500, json={"error": {"message": "boom"}}),
            "unavailable",
            "Sorry, I couldn't answer just now.",
        ),
        (
            SPANISH_USER,
            "hola",
            httpx.Response(503, text="upstream down"),
            "unavailable",
            "Lo siento, no he podido responder",
        ),
        (
            ENGLISH_USER,
            "hello",
            httpx.Response(401, json={"error": {"message": "bad key"}}),
            "auth",
            "Sorry, I couldn't answer just now.",
        ),
        (SPANISH_USER, "hola", httpx.ReadTimeout("timed out"), "timeout", "estoy tardando demasiado"),
        (ENGLISH_USER, "hello", httpx.ConnectError("refused"), "unavailable", "Sorry, I couldn't answer"),
    ],
)
async def test_openai_errors_give_the_user_a_friendly_fallback_in_their_language(
    openai_api, client, store, user, text, response, reason, expected
) -> None:
    if isinstance(response, Exception):
        openai_api.post("/chat/completions").mock(side_effect=response)
    else:
        openai_api.post("/chat/completions").mock(return_value=response)
    reply = await make_agent(client, store, [find_course], model_retries=0).respond(user, text)

    assert reply.fallback == reason
    assert expected in reply.text
    assert "sk-test" not in reply.text


@pytest.mark.asyncio
async def test_an_error_after_a_tool_round_still_falls_back_and_keeps_memory_valid(
    openai_api, client, store
) -> None:
    openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("find_course", {"topic": "python"}, "c1")]),
            httpx.Response(500, json={"error": {"message": "boom"}}),
        ]
    )
    agent = make_agent(client, store, [find_course], model_retries=0)
    reply = await agent.respond(ENGLISH_USER, "python?")

    assert reply.fallback == "unavailable"
    history = agent.history(ENGLISH_USER)
    assert history[0] == {"role": "user", "content": "python?"}
    # the completed tool round is kept, each call with its result
    assert history[1]["tool_calls"][0]["id"] == "c1" and history[2]["tool_call_id"] == "c1"


@pytest.mark.asyncio
async def test_the_turn_deadline_gives_a_fallback(openai_api, client, store) -> None:
    never = asyncio.Event()

    @tool
    async def hangs() -> str:
        """Never answers."""
        await never.wait()
        return "late"

    openai_api.post("/chat/completions").mock(side_effect=[completion(tool_calls=[call("hangs", {}, "h1")])])
    agent = make_agent(client, store, [hangs], turn_timeout=0.05, tool_timeout=30)
    reply = await agent.respond(SPANISH_USER, "hola")

    assert reply.fallback == "deadline"
    assert "tardando demasiado" in reply.text


@pytest.mark.asyncio
async def test_an_empty_answer_is_replaced_by_a_fallback(openai_api, client, store) -> None:
    openai_api.post("/chat/completions").mock(return_value=completion(""))
    reply = await make_agent(client, store, []).respond(ENGLISH_USER, "hello")
    assert reply.fallback == "empty"
    assert reply.text == "Sorry, I couldn't answer just now. Please try again later."


@pytest.mark.asyncio
async def test_responses_api(openai_api, client, store) -> None:
    def response(output: list[dict[str, object]]) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "id": "resp_1",
                "object": "response",
                "created_at": 1764000000,
                "model": "gpt-4.1-mini",
                "status": "completed",
                "output": output,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {
                    "input_tokens": 80,
                    "input_tokens_details": {"cached_tokens": 64},
                    "output_tokens": 7,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": 87,
                },
            },
        )

    route = openai_api.post("/responses").mock(
        side_effect=[
            response(
                [
                    {
                        "type": "function_call",
                        "id": "fc_1",
                        "call_id": "call_r1",
                        "name": "find_course",
                        "arguments": '{"topic": "maths"}',
                        "status": "completed",
                    }
                ]
            ),
            response(
                [
                    {
                        "type": "message",
                        "id": "msg_1",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": "Maths it is.", "annotations": []}],
                    }
                ]
            ),
        ]
    )
    agent = make_agent(client, store, [find_course], api="responses")
    reply = await agent.respond(ENGLISH_USER, "maths")

    assert reply.text == "Maths it is."
    assert reply.usage.cached_tokens == 128
    first = sent(route, 0)
    assert first["instructions"].startswith("You sell courses.")
    assert first["input"] == [{"role": "user", "content": "maths"}]
    assert first["tools"][0]["name"] == "find_course" and first["tools"][0]["strict"] is True
    second = sent(route, 1)["input"]
    assert second[1] == {
        "type": "function_call",
        "call_id": "call_r1",
        "name": "find_course",
        "arguments": '{"topic": "maths"}',
    }
    assert second[2]["type"] == "function_call_output" and second[2]["call_id"] == "call_r1"


@pytest.mark.asyncio
async def test_a_sync_openai_client_works_too(store) -> None:
    with respx.mock(base_url=OPENAI) as api:
        api.post("/chat/completions").mock(
            side_effect=[completion(tool_calls=[call("find_course", {"topic": "x"}, "c1")]), completion("ok")]
        )
        sync_client = openai.OpenAI(api_key="sk-test", http_client=httpx.Client(), max_retries=0)
        reply = await Agent("x", [find_course], client=sync_client, store=store).respond("u1", "x")
        sync_client.close()
    assert reply.text == "ok" and reply.tool_calls[0].ok


@pytest.mark.asyncio
async def test_a_local_openai_compatible_server_from_settings(store) -> None:
    from eki_whatsapp import Settings

    settings = Settings(
        _env_file=None, openai_base_url="http://127.0.0.1:8080/v1", openai_model="llama-3.1-8b"
    )
    with respx.mock(base_url="http://127.0.0.1:8080/v1") as api:
        route = api.post("/chat/completions").mock(return_value=completion("hi from local"))
        agent = Agent("x", settings=settings, store=store, strict_tools=False)
        reply = await agent.respond("u1", "hi")
        await agent.aclose()
    assert reply.text == "hi from local"
    assert sent(route)["model"] == "llama-3.1-8b"
    assert reply.offline is False
