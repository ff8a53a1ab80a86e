"""Eki on WhatsApp: an education assistant built with eki-whatsapp's agent.

    python examples/eki/eki_bot.py chat              # talk to Eki in the terminal (no WhatsApp)
    python examples/eki/eki_bot.py serve --port 8000 # the webhook for Meta and Twilio

Without ``OPENAI_API_KEY`` Eki runs on the offline model (keyword rules, no network); with it,
on OpenAI (``OPENAI_MODEL``, or any OpenAI-compatible server at ``OPENAI_BASE_URL``). Provider
credentials for ``serve`` come from the environment / ``.env`` (see docs/getting-started.md).

The catalogue, quiz and enrolment tools live in ``eki_whatsapp.examples.eki``; this script adds
one tool of its own to show how a bot is put together.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date

from eki_whatsapp import Bot, Settings
from eki_whatsapp.agent import Agent, ToolContext, tool
from eki_whatsapp.examples import eki


@tool
def study_plan(hours_per_week: int, ctx: ToolContext) -> dict[str, object]:
    """Propone un plan de estudio semanal según las horas disponibles del estudiante.

    Args:
        hours_per_week: horas por semana que el estudiante puede dedicar (1 a 40).
    """
    enrolled = (ctx.store.get_value("eki", f"enrollments:{ctx.user_id}") if ctx.store else None) or []
    courses = [eki.COURSES[c].title for c in enrolled] or ["el curso que elijas"]
    per_course = max(1, hours_per_week // len(courses))
    return {
        "message": f"Plan desde el {date.today():%d/%m}: {per_course} h/semana para "
        + ", ".join(courses)
        + ". Una lección y un quiz por sesión.",
    }


def build_agent(settings: Settings, bot: Bot | None = None) -> Agent:
    """Eki's tools plus ours, on OpenAI when a key is set, else on the offline model."""
    store = bot.store if bot is not None else None
    model = None if (settings.openai_api_key or settings.openai_base_url) else eki.offline_model()
    return Agent(
        eki.INSTRUCTIONS,
        [*eki.TOOLS, study_plan],
        model=model,
        settings=settings,
        store=store,
        name="eki",
        locale="es",
        interactive_tools=model is None,  # buttons and lists when a real model chooses them
    )


def chat(settings: Settings) -> None:
    agent = build_agent(settings)
    mode = "offline model" if agent.model.offline else f"OpenAI {agent.model.name}"
    print(f"Eki ({mode}). Escribe 'salir' para terminar.")
    while True:
        try:
            text = input("tú> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if text.lower() in ("salir", "exit", "quit"):
            break
        if not text:
            continue
        reply = agent.respond_sync("34600000000", text, profile_name="Estudiante")
        print(f"eki> {reply.text}")
        for item in reply.outbound:
            print(f"     [{getattr(item, 'kind', 'message')}] {getattr(item, 'url', '') or ''}")


def serve(settings: Settings, port: int) -> None:
    from eki_whatsapp.testing import serve_bot

    bot = Bot(settings)
    bot.on_message(build_agent(settings, bot))
    with serve_bot(bot, "0.0.0.0", port) as server:  # behind your HTTPS proxy / tunnel
        print(f"Eki webhook on {server.url} — point Meta and Twilio at its public URL.")
        server.wait()
    bot.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Eki, the education assistant")
    parser.add_argument("command", choices=["chat", "serve"])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    if args.command == "chat":
        chat(settings)
    else:
        serve(settings, args.port)
