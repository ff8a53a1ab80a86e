"""A message the provider accepted is sent, whatever happens to its log row afterwards: the
caller (``ctx.reply``, ``bot.send``) gets the receipt and the failed write is logged (issue 16,
item 1: a locked database must not turn a reply that went out into a reported failure)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from eki_whatsapp import Bot, MemoryStore, Settings, StoreError
from eki_whatsapp.store.base import LogEntry
from eki_whatsapp.testing import FakeGraphAPI, meta_text

SECRET = "accepted-secret"


class LockedLogStore(MemoryStore):
    """A store whose outbound rows cannot be written (as a locked SQLite database)."""

    def log_outbound(self, entry: LogEntry) -> int:
        raise StoreError("DjangoStore.log_outbound failed: database is locked")


def test_a_reply_the_provider_accepted_is_not_reported_as_failed(caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[Any] = []
    with FakeGraphAPI(app_secret=SECRET, auto_status=()) as graph:
        settings = Settings(_env_file=None, whatsapp_provider="meta", **graph.settings_fields())  # type: ignore[call-arg]
        bot = Bot(settings, store=LockedLogStore(), inline=True)

        @bot.on_message
        def answer(message: Any, ctx: Any) -> None:
            try:
                outcomes.append(ctx.reply("hola de vuelta"))
            except Exception as exc:  # what the issue saw: StoreError inside ctx.reply
                outcomes.append(exc)

        with caplog.at_level(logging.ERROR):
            response = bot.handle(meta_text("hola", sender="5215512345678").request(secret=SECRET))
        bot.close()
    assert response.status == 200
    assert [m.text for m in graph.sent if m.type == "text"] == ["hola de vuelta"]
    (receipt,) = outcomes
    assert not isinstance(receipt, Exception), receipt
    assert receipt.provider == "meta" and receipt.message_id == graph.sent[-1].id
    assert "accepted message" in caplog.text and "the message was sent" in caplog.text
