"""The offline model (no network, no weights) and the Eki example built on it."""

from __future__ import annotations

from typing import Literal

import pytest
import respx

from eki_whatsapp import Settings
from eki_whatsapp.agent import Agent, OfflineChatModel, ToolContext, tool
from eki_whatsapp.examples import eki
from eki_whatsapp.messages import Media
from eki_whatsapp.store import MemoryStore


@tool
def weather(city: str, days: int = 1) -> dict[str, object]:
    """Weather forecast for a city.

    Args:
        city: the city.
        days: how many days ahead.
    """
    return {"city": city, "days": days, "sky": "sunny"}


@tool
def book_room(room: Literal["blue", "red"], ctx: ToolContext) -> str:
    """Book a meeting room for the user."""
    return f"{room} room booked for {ctx.profile_name}"


def offline_agent(**model_options: object) -> Agent:
    model = OfflineChatModel(locale="en", **model_options)  # type: ignore[arg-type]
    return Agent("x", [weather, book_room], model=model, store=MemoryStore())


@pytest.mark.asyncio
async def test_it_picks_the_matching_tool_and_fills_arguments_from_the_text() -> None:
    with respx.mock() as net:  # any HTTP request would fail the test
        reply = await offline_agent().respond("u1", "What's the forecast in Lisbon for 3 days?")
    assert not net.calls
    assert reply.offline is True and reply.metadata["offline"] is True
    assert [r.name for r in reply.tool_calls] == ["weather"]
    assert reply.tool_calls[0].arguments == '{"city": "Lisbon", "days": 3}'
    assert "*city*: Lisbon" in reply.text and "*sky*: sunny" in reply.text


@pytest.mark.asyncio
async def test_enum_values_and_the_context_are_used() -> None:
    reply = await offline_agent().respond("u1", "please book the red room", profile_name="Ana")
    assert reply.tool_calls[0].arguments == '{"room": "red"}'
    assert reply.text == "red room booked for Ana"


@pytest.mark.asyncio
async def test_it_asks_for_a_missing_argument_and_reads_the_next_message_as_the_answer() -> None:
    agent = offline_agent()
    ask = await agent.respond("u1", "book a room")
    assert ask.tool_calls == ()
    assert ask.text == "For that I need you to tell me: room (options: blue, red)."
    done = await agent.respond("u1", "blue")
    assert done.text == "blue room booked for None"


@pytest.mark.asyncio
async def test_templates_phrase_the_result() -> None:
    agent = offline_agent(templates={"weather": "In {city} it will be {sky}."})
    reply = await agent.respond("u1", "weather in Oslo")
    assert reply.text == "In Oslo it will be sunny."


@pytest.mark.asyncio
async def test_without_a_match_it_explains_what_it_can_do() -> None:
    reply = await offline_agent().respond("u1", "tell me a joke")
    assert reply.tool_calls == ()
    assert "I'm an automated assistant" in reply.text
    assert "• Weather forecast for a city." in reply.text
    assert "• Book a meeting room for the user." in reply.text


def test_without_an_api_key_the_agent_uses_the_offline_model_and_says_so(caplog) -> None:
    agent = Agent("x", [weather], settings=Settings(_env_file=None))
    assert isinstance(agent.model, OfflineChatModel)
    assert "offline model (no OPENAI_API_KEY)" in caplog.text


# --- the Eki example ---------------------------------------------------------------------------
@pytest.fixture
def eki_agent() -> Agent:
    return eki.build_eki_agent(Settings(_env_file=None), store=MemoryStore())


def test_eki_is_offline_without_a_key_and_openai_with_one() -> None:
    from eki_whatsapp.agent.openai_model import OpenAIChatModel

    offline = eki.build_eki_agent(Settings(_env_file=None))
    online = eki.build_eki_agent(Settings(_env_file=None, openai_api_key="sk-test", openai_model="gpt-4.1"))
    assert isinstance(offline.model, OfflineChatModel) and "send_reply_buttons" not in offline.tools
    assert isinstance(online.model, OpenAIChatModel) and online.model.name == "gpt-4.1"
    assert set(eki.TOOLS) <= set(online.tools.values()) and "send_reply_buttons" in online.tools
    assert online.instructions.startswith("Eres Eki")


@pytest.mark.asyncio
async def test_eki_lists_courses(eki_agent: Agent) -> None:
    reply = await eki_agent.respond("34600111222", "¿Qué cursos tenéis?")
    assert [c.name for c in reply.tool_calls] == ["list_courses"]
    assert reply.text.startswith("📚 Estos son nuestros cursos:")
    for course in eki.COURSES.values():
        assert course.title in reply.text


@pytest.mark.asyncio
async def test_eki_sends_a_lesson_video(eki_agent: Agent) -> None:
    reply = await eki_agent.respond("34600111222", "quiero ver el video de fracciones")
    assert reply.tool_calls[0].arguments == '{"topic": "fracciones", "course_id": null}'
    (video,) = reply.outbound
    assert isinstance(video, Media) and video.kind == "video"
    assert video.url == "https://cdn.example.com/eki/mat-fracciones.mp4"
    assert "Qué es una fracción" in reply.text


@pytest.mark.asyncio
async def test_eki_quiz_and_answer_checking(eki_agent: Agent) -> None:
    question = await eki_agent.respond("34600111222", "hazme un quiz de python")
    assert "¿Qué imprime print(2 * 3)?" in question.text and "b) 6" in question.text
    wrong = await eki_agent.respond("34600111222", "a")
    assert [c.name for c in wrong.tool_calls] == ["check_answer"]
    assert wrong.text.startswith("❌ No es correcto. La respuesta era b) 6.")
    await eki_agent.respond("34600111222", "otro quiz de python")
    right = await eki_agent.respond("34600111222", "def")
    assert right.text.startswith("✅ ¡Correcto!") and "Llevas 1 de 2" in right.text


@pytest.mark.asyncio
async def test_eki_answer_without_a_pending_quiz_is_explained(eki_agent: Agent) -> None:
    reply = await eki_agent.respond("34600111222", "mi respuesta es b")
    assert reply.tool_calls[0].error == "tool_error"
    assert "no tiene ningún quiz pendiente" in reply.text


@pytest.mark.asyncio
async def test_eki_enrols_with_the_whatsapp_name(eki_agent: Agent) -> None:
    store = eki_agent.store
    ask = await eki_agent.respond("34600111222", "quiero inscribirme", profile_name="Lucía")
    assert "opciones: python, matematicas, ingles" in ask.text
    done = await eki_agent.respond("34600111222", "en inglés", profile_name="Lucía")
    assert (
        done.text
        == "¡Listo, Lucía! Te he inscrito en Inglés A2 para el día a día. Tu primera lección: Presentarse."
    )
    assert store is not None and store.get_value("eki", "enrollments:34600111222") == ["ingles"]
    again = await eki_agent.respond("34600111222", "inscríbeme en inglés", profile_name="Lucía")
    assert "ya estabas inscrito/a" in again.text


def test_eki_register_adds_the_agent_as_a_message_handler() -> None:
    from eki_whatsapp import Bot

    bot = Bot(Settings(_env_file=None, whatsapp_store_url="memory://"), providers={})
    agent = eki.register(bot)
    assert isinstance(agent.model, OfflineChatModel)
    assert bot.handlers.messages[0].func is agent and bot.handlers.messages[0].is_async
    bot.close()
