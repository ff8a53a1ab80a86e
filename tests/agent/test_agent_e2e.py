"""End to end: a signed webhook in, the agent runs a tool, the reply goes out on the same provider.

Meta's Graph API, Twilio's REST API and OpenAI are all mocked at the HTTP layer with respx.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import openai
import pytest
import respx

from eki_whatsapp import Bot, MemoryStore, Settings, WebhookRequest
from eki_whatsapp.agent import Agent, ToolContext, tool
from eki_whatsapp.examples import eki
from eki_whatsapp.security import meta_signature, twilio_signature

from .conftest import OPENAI, call, completion, sent

DATA = Path(__file__).resolve().parent.parent / "data"
APP_SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
PHONE_ID = "106540352242922"
GRAPH = f"https://graph.facebook.com/v26.0/{PHONE_ID}/messages"
TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
TWILIO_URL = "https://bot.example.com/twilio/whatsapp/inbound"


def settings() -> Settings:
    return Settings(
        _env_file=None,
        whatsapp_provider="dual",
        whatsapp_store_url="memory://",
        meta_whatsapp_token="EAAG-test-token",
        meta_phone_number_id=PHONE_ID,
        meta_app_secret=APP_SECRET,
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_whatsapp_number="whatsapp:+14155238886",
    )


def meta_body(text: str | None = None) -> bytes:
    """docs/wire.md §3.5 (from 16505551234), sent now: the 24-hour window must be open to reply."""
    data = json.loads((DATA / "meta_text_3_5.json").read_text())
    message = data["entry"][0]["changes"][0]["value"]["messages"][0]
    message["timestamp"] = str(int(time.time()))
    if text is not None:
        message["text"]["body"] = text
    return json.dumps(data).encode()


def meta_request(body: bytes | None = None) -> WebhookRequest:
    body = body or meta_body()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(APP_SECRET, body)}
    return WebhookRequest("POST", "https://bot.example.com/meta/webhook", headers, body=body)


def twilio_request() -> WebhookRequest:
    body = (DATA / "twilio_t1.form").read_bytes().strip()  # docs/wire.md T1, from +5511987654321
    params = parse_qsl(body.decode(), keep_blank_values=True)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, TWILIO_URL, params),
    }
    return WebhookRequest("POST", TWILIO_URL, headers, body=body)


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(GRAPH).mock(
            side_effect=lambda request: httpx.Response(
                200,
                json={
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
                    "messages": [{"id": f"wamid.OUT{len(router.routes[0].calls)}"}],
                },
            )
        )
        router.post(TWILIO).mock(
            side_effect=lambda request: httpx.Response(
                201,
                json={
                    "sid": f"SM{len(router.routes[1].calls):032d}",
                    "status": "queued",
                    "to": dict(parse_qsl(request.content.decode()))["To"],
                    "from": "whatsapp:+14155238886",
                    "account_sid": TWILIO_SID,
                    "error_code": None,
                    "error_message": None,
                },
            )
        )
        yield router


seen: list[tuple[str, str | None, str | None]] = []


@tool
def available_colors(ctx: ToolContext) -> list[str]:
    """Colours the product comes in."""
    seen.append((ctx.user_id, ctx.provider, ctx.profile_name))
    return ["blue", "red"]


def scripted_openai(wire: respx.MockRouter, answer: str) -> respx.Route:
    return wire.post(f"{OPENAI}/chat/completions").mock(
        side_effect=[completion(tool_calls=[call("available_colors", {}, "call_c")]), completion(answer)]
    )


@pytest.fixture
def bot(wire: respx.MockRouter) -> Iterator[Bot]:
    b = Bot(settings(), store=MemoryStore(), inline=True)
    yield b
    b.close()


def test_meta_message_is_answered_through_the_graph_api(wire, bot) -> None:
    seen.clear()
    model = scripted_openai(wire, "Yes! It comes in **blue** and *red*.")
    client = openai.AsyncOpenAI(api_key="sk-test", http_client=httpx.AsyncClient(), max_retries=0)
    bot.on_message(Agent("You sell shirts.", [available_colors], client=client))

    first = meta_body()
    response = bot.handle(meta_request(first))

    assert response.status == 200
    assert seen == [("16505551234", "meta", "Sheena Nelson")]
    assert "Sheena Nelson" in sent(model, 0)["messages"][0]["content"]
    assert sent(model, 0)["messages"][-1] == {"role": "user", "content": "Does it come in another color?"}
    (graph_call,) = wire.routes[0].calls
    assert graph_call.request.headers["authorization"] == "Bearer EAAG-test-token"
    body = json.loads(graph_call.request.content)
    assert body["to"] == "16505551234" and body["type"] == "text"
    assert body["text"]["body"] == "Yes! It comes in *blue* and _red_."  # Markdown → WhatsApp
    assert not wire.routes[1].calls  # nothing went out through Twilio
    out = bot.store.list_log(direction="out")
    assert [(e.provider, e.reason) for e in out] == [("meta", "reply-channel")]

    # Meta retries the same delivery: deduplicated, no second reply.
    assert bot.handle(meta_request(first)).status == 200
    assert len(wire.routes[0].calls) == 1 and model.call_count == 2


def test_twilio_message_is_answered_through_the_twilio_api(wire, bot) -> None:
    seen.clear()
    model = scripted_openai(wire, "Sim! Temos em **azul** e vermelho.")
    client = openai.AsyncOpenAI(api_key="sk-test", http_client=httpx.AsyncClient(), max_retries=0)
    bot.on_message(Agent("You sell shirts.", [available_colors], client=client))

    response = bot.handle(twilio_request())

    assert response.status == 200
    assert seen == [("5511987654321", "twilio", "José")]
    assert sent(model, 0)["messages"][-1]["content"] == "Olá, tudo bem?"
    (twilio_call,) = wire.routes[1].calls
    form = dict(parse_qsl(twilio_call.request.content.decode()))
    assert form["To"] == "whatsapp:+5511987654321"
    assert form["From"] == "whatsapp:+14155238886"
    assert form["Body"] == "Sim! Temos em *azul* e vermelho."
    assert twilio_call.request.headers["authorization"].startswith("Basic ")
    assert not wire.routes[0].calls


@pytest.mark.asyncio
async def test_async_face_and_the_offline_eki_agent_send_text_then_video(wire) -> None:
    bot = Bot(settings(), store=MemoryStore(), inline=True)
    eki.register(bot)  # no OPENAI_API_KEY in these settings: offline model
    response = await bot.handle_async(meta_request(meta_body("quiero ver el video de fracciones")))

    assert response.status == 200
    text_call, video_call = (json.loads(c.request.content) for c in wire.routes[0].calls)
    assert text_call["type"] == "text" and "Qué es una fracción" in text_call["text"]["body"]
    assert video_call["type"] == "video"
    assert video_call["video"]["link"] == "https://cdn.example.com/eki/mat-fracciones.mp4"
    assert not any(str(c.request.url).startswith(OPENAI) for c in wire.calls)
    bot.close()
