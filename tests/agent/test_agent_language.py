"""Which language fallbacks and the offline agent speak (issue 17 item 8, issue 16 item 6)."""

from __future__ import annotations

import pytest

from eki_whatsapp import Settings
from eki_whatsapp.agent import Agent, OfflineChatModel, detect_locale, tool
from eki_whatsapp.agent.locale import FALLBACK_MESSAGES
from eki_whatsapp.store import MemoryStore

from .phrases import ENGLISH, PORTUGUESE, SPANISH

US_NUMBER = "+15551234567"  # the calling code says nothing about the language


@pytest.mark.parametrize(("phrases", "lang"), [(SPANISH, "es"), (PORTUGUESE, "pt"), (ENGLISH, "en")])
def test_common_short_messages_are_recognised_from_a_number_that_says_nothing(phrases, lang) -> None:
    hits = sum(detect_locale(US_NUMBER, text, "en") == lang for text in phrases)
    assert hits / len(phrases) >= 0.9, f"{hits}/{len(phrases)}"


def test_the_words_win_then_the_number_then_the_bots_language() -> None:
    assert detect_locale("+5511987654321", "hello, how much is it?", "es") == "en"
    assert detect_locale("+5511987654321", "ok", "es") == "pt"
    assert detect_locale(US_NUMBER, "ok", "es") == "es"


@pytest.mark.asyncio
async def test_the_default_is_the_bots_configured_language(fake_client) -> None:
    settings = Settings(_env_file=None, whatsapp_fallback_template_language="es_MX")
    agent = Agent("x", client=fake_client, settings=settings, store=MemoryStore(), model_retries=0)
    assert agent.default_locale == "es"
    await fake_client.close()  # every call now fails: a fallback, in the bot's language
    reply = await agent.respond(US_NUMBER, "ok")
    assert reply.fallback is not None and reply.locale == "es"
    assert reply.text in FALLBACK_MESSAGES["es"].values()


def test_whatsapp_language_is_the_bots_language_before_the_templates(fake_client) -> None:
    settings = Settings(_env_file=None, whatsapp_language="pt_BR", whatsapp_fallback_template_language="en")
    agent = Agent("x", client=fake_client, settings=settings, store=MemoryStore())
    assert agent.default_locale == "pt"
    assert detect_locale(US_NUMBER, "ok", agent.default_locale) == "pt"


@tool
def horario(curso: str) -> str:
    """Horario de un curso.

    Args:
        curso: el curso, p. ej. "python".
    """
    return f"{curso}: lunes y miércoles a las 18:00"


@pytest.mark.asyncio
async def test_an_args_example_does_not_stop_the_offline_agent_from_calling_the_tool() -> None:
    agent = Agent("Asistente", [horario], model=OfflineChatModel(), store=MemoryStore())
    reply = await agent.respond("+5215512345678", "¿cuál es el horario de python?")
    assert [(r.name, r.arguments) for r in reply.tool_calls] == [("horario", '{"curso": "python"}')]
    assert reply.text == "python: lunes y miércoles a las 18:00"


@pytest.mark.asyncio
async def test_the_offline_agent_asks_in_the_agents_language() -> None:
    agent = Agent("Asistente", [horario], model=OfflineChatModel(), store=MemoryStore(), locale="es")
    reply = await agent.respond("+5215512345678", "cual es el horario")
    assert reply.tool_calls == ()
    assert reply.text == 'Para eso necesito que me digas: el curso, p. ej. "python".'
