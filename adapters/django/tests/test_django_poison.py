"""The ORM store and poison: values its database cannot hold are stored cleaned (with a log line)
and the message is handled; the rest of the batch too (docs/webhook.md, "Malformed and extreme
input"). Runs on the test site's database: SQLite, or PostgreSQL with EKI_DJANGO_DB=postgres."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eki_whatsapp import Bot, Event, InboundMessage, Settings, StatusUpdate, WebhookRequest
from eki_whatsapp.security import meta_signature
from eki_whatsapp_django import DjangoStore

SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"


def signed(body: dict[str, Any]) -> WebhookRequest:
    raw = json.dumps(body).encode()  # lone surrogates travel as \ud800 escapes
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(SECRET, raw)}
    return WebhookRequest("POST", "https://bot.example.com/webhook/", headers, None, raw)


def text(message_id: str, body: str) -> dict[str, Any]:
    return {
        "from": "5511987654321",
        "id": message_id,
        "timestamp": "1749416400",
        "type": "text",
        "text": {"body": body},
    }


@pytest.mark.django_db
def test_poisoned_text_and_error_codes_are_stored_cleaned_and_handled() -> None:
    settings = Settings(_env_file=None, meta_app_secret=SECRET, whatsapp_store_url="memory://")  # type: ignore[call-arg]
    store = DjangoStore()
    bot = Bot(settings, store=store, providers={}, inline=True)
    got: list[Event] = []
    bot.on_message(got.append)
    bot.on_status(got.append)
    failed = {"id": "wamid.OUT", "status": "failed", "timestamp": "1749416400", "errors": [{"code": 10**20}]}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511987654321"}],
        "messages": [text("wamid.SUR", "a\ud800b"), text("wamid.NUL", "a\x00b"), text("wamid.OK", "ok")],
        "statuses": [failed],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    try:
        response = bot.handle(signed(body))
    finally:
        bot.sweeper.stop()

    assert response.status == 200
    texts = {e.id: e.text for e in got if isinstance(e, InboundMessage)}
    assert texts["wamid.OK"] == "ok"
    assert texts["wamid.SUR"] == "a\ufffdb"  # what the database holds, and the handler got
    assert texts["wamid.NUL"] in ("a\x00b", "a\ufffdb")  # SQLite holds NUL, PostgreSQL does not
    for message_id, stored in texts.items():
        row = store.get_message("meta", message_id)
        assert row is not None and row.text == stored and row.raw is not None
    assert [e.message_id for e in got if isinstance(e, StatusUpdate)] == ["wamid.OUT"]
    [record] = store.statuses("meta", "wamid.OUT")
    assert record.status == "failed" and record.error_code is None
    assert record.raw["errors"][0]["code"] == 10**20
