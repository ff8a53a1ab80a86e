"""The agent under real failures (issue 17), against the local OpenAI-compatible server.

Every scenario runs on both wire formats (Chat Completions and Responses); the server refuses
what the real API refuses (unmatched tool results, strict schemas outside the subset, bodies
over its context window, invalid Unicode).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import openai
import pytest

from eki_whatsapp.agent import Agent, tool
from eki_whatsapp.agent.locale import FALLBACK_MESSAGES
from eki_whatsapp.store import MemoryStore, SQLiteStore
from eki_whatsapp.testing import FakeOpenAI

SPANISH_USER = "34600111222"
ENGLISH_USER = "447700900123"


def make_agent(client: openai.AsyncOpenAI, api: str, tools: list | None = None, **options: object) -> Agent:
    options.setdefault("store", MemoryStore())
    return Agent("You sell courses.", tools or [], client=client, api=api, **options)  # type: ignore[arg-type]


# --- 2. refusals and content filters ---------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_refusal_reaches_the_user_as_a_polite_localised_refusal(
    fake_openai, fake_client, api, caplog
) -> None:
    fake_openai.script(FakeOpenAI.refuse("I'm sorry, I can't assist with that."))
    agent = make_agent(fake_client, api)
    with caplog.at_level(logging.WARNING, logger="eki_whatsapp.agent"):
        reply = await agent.respond(SPANISH_USER, "hola, dime algo prohibido")

    assert reply.fallback == "refused"
    assert reply.text == FALLBACK_MESSAGES["es"]["refused"]
    assert "inténtalo de nuevo" not in reply.text.lower()
    assert reply.metadata["refusal"] == "I'm sorry, I can't assist with that."
    assert "refused to answer" in caplog.text
    assert agent.history(SPANISH_USER) == []  # a refused message is not sent again next turn


@pytest.mark.asyncio
async def test_a_content_filter_stop_is_a_refusal_too(fake_openai, fake_client, api) -> None:
    fake_openai.script(FakeOpenAI.filtered("Here is how to"))
    reply = await make_agent(fake_client, api).respond(ENGLISH_USER, "how do I ...")
    assert reply.fallback == "content_filter"
    assert reply.text == FALLBACK_MESSAGES["en"]["refused"]


# --- 3. oversized turns -------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_an_oversized_tool_result_is_cut_with_a_note_and_does_not_poison_the_next_turn(
    fake_openai, fake_client, api
) -> None:
    fake_openai.context_limit = 1_000_000  # bytes: far below 3.4 MB

    @tool
    def export_catalogue() -> str:
        """The whole catalogue."""
        return "x" * 3_400_000

    fake_openai.script(FakeOpenAI.tools(("export_catalogue", {})), FakeOpenAI.answer("Here it is, in short."))
    agent = make_agent(fake_client, api, [export_catalogue], max_tool_result_chars=20_000)
    first = await agent.respond(ENGLISH_USER, "send me the catalogue")
    second = await agent.respond(ENGLISH_USER, "thanks")

    assert first.fallback is None and first.text == "Here it is, in short."
    (result,) = fake_openai.requests[1].tool_results
    assert len(result) < 21_000 and "[truncated: the result had 3,400,000 characters" in result
    assert second.fallback is None
    assert all(r.status == 200 and r.size < 100_000 for r in fake_openai.requests)


@pytest.mark.asyncio
async def test_a_huge_stored_history_is_bounded_before_it_is_sent(fake_openai, fake_client, api) -> None:
    store = MemoryStore()
    agent = make_agent(fake_client, api, store=store, memory_turns=20)
    old = []
    for i in range(3000):
        old += [
            {"role": "user", "content": f"question {i} " + "y" * 300},
            {"role": "assistant", "content": "ok"},
        ]
    store.save_memory(agent.memory_key(ENGLISH_USER), old)  # 6,000 messages, ~2 MB

    reply = await agent.respond(ENGLISH_USER, "hello")

    assert reply.fallback is None
    (request,) = fake_openai.requests
    users = [t for role, t in request.texts if role == "user"]
    assert len(users) <= 21 and users[-1] == "hello"
    assert request.size < 60_000


@pytest.mark.asyncio
async def test_a_turn_over_the_request_budget_sends_its_tool_results_shortened(
    fake_openai, fake_client, api
) -> None:
    @tool
    def report() -> str:
        """A long report."""
        return "r" * 12_000

    fake_openai.script(FakeOpenAI.tools(("report", {})), FakeOpenAI.answer("Summary."))
    agent = make_agent(fake_client, api, [report], context_tokens=1000)
    reply = await agent.respond(ENGLISH_USER, "the report please")

    assert reply.text == "Summary."
    (result,) = fake_openai.requests[1].tool_results
    assert len(result) < 2_300 and "[truncated: the result had 12,000 characters" in result


@pytest.mark.asyncio
async def test_context_length_exceeded_is_retried_without_history_then_answered(
    fake_openai, fake_client, api, caplog
) -> None:
    store = MemoryStore()
    agent = make_agent(fake_client, api, store=store)
    store.save_memory(
        agent.memory_key(ENGLISH_USER),
        [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "sure"}],
    )
    fake_openai.script(
        FakeOpenAI.error(400, "maximum context length exceeded", code="context_length_exceeded"),
        FakeOpenAI.answer("Short answer."),
    )
    with caplog.at_level(logging.WARNING, logger="eki_whatsapp.agent"):
        reply = await agent.respond(ENGLISH_USER, "hello")

    assert reply.text == "Short answer." and reply.fallback is None
    first, retry = fake_openai.requests
    assert any(t == "earlier" for _, t in first.texts)
    assert not any(t == "earlier" for _, t in retry.texts)  # sent again without the history
    assert "over the model's context window" in caplog.text


@pytest.mark.asyncio
async def test_a_turn_that_failed_for_context_length_keeps_only_the_question(
    fake_openai, fake_client, api
) -> None:
    @tool
    def big() -> str:
        """A big result."""
        return "z" * 5000

    over = FakeOpenAI.error(400, "too long", code="context_length_exceeded")
    fake_openai.script(FakeOpenAI.tools(("big", {})), over, over)
    agent = make_agent(fake_client, api, [big])
    reply = await agent.respond(ENGLISH_USER, "go")

    assert reply.fallback == "context_length"
    assert agent.history(ENGLISH_USER) == [{"role": "user", "content": "go"}]


# --- 6. truncated answers --------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_truncated_answer_is_marked_not_passed_off_as_complete(
    fake_openai, fake_client, api, caplog
) -> None:
    fake_openai.script(FakeOpenAI.truncated("Los cursos son: Python, Matemáticas y"))
    with caplog.at_level(logging.WARNING, logger="eki_whatsapp.agent"):
        reply = await make_agent(fake_client, api).respond(SPANISH_USER, "qué cursos hay")

    assert reply.truncated is True and reply.fallback is None
    assert reply.text.startswith("Los cursos son: Python, Matemáticas y")
    assert reply.text.endswith(f"_{FALLBACK_MESSAGES['es']['cut']}_")
    assert "cut at the model's output limit" in caplog.text


@pytest.mark.asyncio
async def test_an_answer_that_formats_to_nothing_gets_the_fallback(fake_openai, fake_client, api) -> None:
    fake_openai.script(FakeOpenAI.answer("---"))
    reply = await make_agent(fake_client, api).respond(ENGLISH_USER, "hello")
    assert reply.fallback == "empty"
    assert reply.text == FALLBACK_MESSAGES["en"]["error"]


# --- 7. Retry-After, lone surrogates ---------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_retry_after_beyond_the_turn_is_answered_busy_at_once(fake_openai, fake_client, api) -> None:
    fake_openai.script(FakeOpenAI.error(429, "Rate limit reached", retry_after=120))
    agent = make_agent(fake_client, api, turn_timeout=30, model_retries=3, max_concurrent_calls=1)
    reply = await agent.respond(SPANISH_USER, "hola")

    assert reply.fallback == "rate_limited"
    assert reply.text == FALLBACK_MESSAGES["es"]["busy"]
    assert len(fake_openai.requests) == 1  # no sleep, no retry inside the turn
    # the slot was given back: the next user is answered
    assert (await agent.respond(ENGLISH_USER, "hello")).text == "echo: hello"


@pytest.mark.asyncio
async def test_a_short_retry_after_is_waited_outside_the_slot_and_retried(
    fake_openai, fake_client, api
) -> None:
    fake_openai.script(FakeOpenAI.error(429, "Rate limit reached", retry_after=0.01))
    reply = await make_agent(fake_client, api, model_retries=1).respond(ENGLISH_USER, "hello")
    assert reply.text == "echo: hello" and len(fake_openai.requests) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_a_lone_surrogate_in_a_tool_result_neither_locks_the_user_out_nor_loses_memory(
    fake_openai, fake_client, api, backend, tmp_path: Path
) -> None:
    store = MemoryStore() if backend == "memory" else SQLiteStore(str(tmp_path / "agent.sqlite3"))

    @tool
    def read_file() -> str:
        """A file decoded with surrogateescape."""
        return b"caf\xe9 menu".decode("utf-8", "surrogateescape")

    fake_openai.script(FakeOpenAI.tools(("read_file", {})), FakeOpenAI.answer("The menu is ready."))
    agent = make_agent(fake_client, api, [read_file], store=store)
    first = await agent.respond(ENGLISH_USER, "menu?")
    second = await agent.respond(ENGLISH_USER, "and now?")

    assert first.text == "The menu is ready." and second.text == "echo: and now?"
    assert all(r.status == 200 for r in fake_openai.requests)
    assert "caf\ufffd menu" in fake_openai.requests[1].tool_results[0]
    history = agent.history(ENGLISH_USER, store=store)
    assert [m["content"] for m in history if m["role"] == "user"] == ["menu?", "and now?"]
    json.dumps(history, ensure_ascii=False).encode("utf-8")
    store.close()


def test_nothing_to_send_agrees_with_the_formatted_answer() -> None:
    from eki_whatsapp.agent.turn import nothing_to_send
    from eki_whatsapp.formatting import to_whatsapp

    for answer in ["", "  ", "---", "***\n___", "# ", "**", "```\n```", "[](x)", "ok", "# 1", "**é**", "- a"]:
        assert nothing_to_send(answer) == (not to_whatsapp(answer).strip()), answer
