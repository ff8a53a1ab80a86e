"""The Agent as a message handler: what it answers, what it sends, and in which order."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import pytest

from eki_whatsapp.agent import Agent, ToolContext, tool
from eki_whatsapp.events import InboundLocation, InboundMessage, InboundReaction
from eki_whatsapp.messages import Buttons, Media
from eki_whatsapp.providers.base import ProviderDown
from eki_whatsapp.store import MemoryStore

from .conftest import ScriptedModel


def message(text: str | None = "hello", *, user: str = "16505551234", **fields: Any) -> InboundMessage:
    return InboundMessage(
        provider="twilio",
        id=f"SM{abs(hash((text, user, tuple(fields)))):032d}"[:34],
        sender=user,
        recipient="14155238886",
        type=fields.pop("type", "text"),
        timestamp=datetime.now(timezone.utc),
        raw={},
        text=text,
        profile_name="José",
        **fields,
    )


class FakeContext:
    """Stands in for ``bot.Context``: records what the handler sends."""

    def __init__(self, store: MemoryStore, fail: bool = False) -> None:
        self.store = store
        self.sent: list[Any] = []
        self.read: list[bool] = []
        self.fail = fail

    async def reply_async(self, item: Any) -> None:
        if self.fail:
            raise ProviderDown("upstream 503", provider="twilio", http_status=503)
        self.sent.append(item)

    async def mark_as_read_async(self, *, typing: bool = False) -> bool:
        self.read.append(typing)
        return True


@tool
def show_video(ctx: ToolContext) -> str:
    """Send the intro video."""
    ctx.attach(Media.video("https://cdn.example.com/intro.mp4"))
    ctx.attach(Buttons("Did it help?", ["Yes", "No"]))
    return "sent"


@pytest.mark.asyncio
async def test_the_answer_is_formatted_for_whatsapp_and_attachments_follow_it() -> None:
    from eki_whatsapp.agent import ToolCall

    model = ScriptedModel(
        lambda m: (
            ToolCall("v1", "show_video", "{}")
            if m[-1]["role"] == "user"
            else "## Intro\nHere is **the video**."
        )
    )
    store = MemoryStore()
    ctx = FakeContext(store)
    agent = Agent("x", [show_video], model=model, typing_indicator=True)

    reply = await agent(message("video please"), ctx)  # type: ignore[arg-type]

    assert reply is not None and reply.text == "## Intro\nHere is **the video**."
    text, video, buttons = ctx.sent
    assert text == "*Intro*\nHere is *the video*."
    assert isinstance(video, Media) and video.url == "https://cdn.example.com/intro.mp4"
    assert isinstance(buttons, Buttons)
    assert ctx.read == [True]
    assert agent.history("16505551234", store=store), "the bot's store holds the memory"


@pytest.mark.asyncio
async def test_messages_without_text_are_ignored_and_locations_are_described() -> None:
    model = ScriptedModel()
    ctx = FakeContext(MemoryStore())
    agent = Agent("x", model=model)

    reaction = message(None, type="reaction", reaction=InboundReaction("wamid.X", "👍"))
    assert await agent(reaction, ctx) is None  # type: ignore[arg-type]
    assert model.requests == [] and ctx.sent == []

    pin = message(None, type="location", location=InboundLocation(41.39, 2.17, name="Eki HQ"))
    await agent(pin, ctx)  # type: ignore[arg-type]
    assert model.requests[0][-1]["content"] == "[location 41.39,2.17 Eki HQ]"
    assert ctx.sent == ["echo: [location 41.39,2.17 Eki HQ]"]


@pytest.mark.asyncio
async def test_a_failed_send_is_logged_not_raised(caplog) -> None:
    ctx = FakeContext(MemoryStore(), fail=True)
    with caplog.at_level(logging.ERROR, logger="eki_whatsapp.agent"):
        reply = await Agent("x", model=ScriptedModel())(message("hi"), ctx)  # type: ignore[arg-type]
    assert reply is not None and reply.text == "echo: hi"
    assert "could not send its reply" in caplog.text and "ProviderDown" in caplog.text


@pytest.mark.asyncio
async def test_messages_merged_into_a_running_turn_are_answered_once() -> None:
    model = ScriptedModel(hold=True)
    store = MemoryStore()
    agent = Agent("x", model=model, store=store)
    contexts = [FakeContext(store) for _ in range(3)]

    first = asyncio.create_task(agent(message("one"), contexts[0]))  # type: ignore[arg-type]
    await model.entered.wait()
    rest = [asyncio.create_task(agent(message(t), c)) for t, c in zip(("two", "three"), contexts[1:])]  # type: ignore[arg-type]
    for _ in range(5):
        await asyncio.sleep(0)
    model.release.set()
    await asyncio.gather(first, *rest)

    assert [c.sent for c in contexts] == [["echo: one"], ["echo: two\nthree"], []]
