"""The provider seam: a third provider, defined entirely here, works through the ordinary Bot.

"Pigeon" has its own request shape (JSON with ``msg_id``/``from``/``text``), its own signature
(``X-Pigeon-Signature``: hex HMAC-SHA256 of the body) and its own send endpoint (a tiny fake on
127.0.0.1). Registering it on a ``Bot`` is all it takes: a message in produces a reply out on
Pigeon through the pipeline and the router, with no change to the library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from eki_whatsapp import Bot, InboundMessage, MemoryStore, Settings, WebhookRequest, WebhookResponse
from eki_whatsapp.events import Event, MediaRef
from eki_whatsapp.messages import Text
from eki_whatsapp.providers.base import (
    PayloadError,
    Provider,
    ProviderError,
    SendReceipt,
    WebhookReader,
    refuse,
)

SECRET = "pigeon-loft-secret"
TOKEN = "pigeon-api-token"
LOFT = "loft-7"
URL = "https://bot.example.com/webhook/whatsapp/"


# --- the fake Pigeon API on 127.0.0.1 -----------------------------------------------------------
class PigeonAPI:
    """Accepts ``POST /v1/flights`` with a Bearer token; remembers every flight."""

    def __init__(self) -> None:
        self.flights: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/flights" or self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._answer(401, {"error": "bad token"})
                    return
                flight = json.loads(body)
                api.flights.append(flight)
                self._answer(201, {"flight": f"fl-{len(api.flights)}", "state": "airborne"})

            def _answer(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the provider: one class, both faces --------------------------------------------------------
class Pigeon:
    """A provider written against the public protocols only."""

    name = "pigeon"
    ack = WebhookResponse(200, {"Content-Type": "text/plain"}, b"coo")

    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"})

    # inbound
    def detect(self, request: WebhookRequest) -> bool:
        return request.method == "POST" and "x-pigeon-signature" in request.headers

    def verify(self, request: WebhookRequest) -> WebhookResponse | None:
        expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-pigeon-signature", "")):
            return refuse(403, "invalid X-Pigeon-Signature")
        return None

    def parse(self, request: WebhookRequest) -> list[Event]:
        try:
            note = json.loads(request.body)
            return [
                InboundMessage(
                    provider=self.name,
                    id=note["msg_id"],
                    sender=note["from"],
                    recipient=note["loft"],
                    type="text",
                    timestamp=datetime.fromtimestamp(note["ts"], tz=timezone.utc),
                    raw=note,
                    text=note["text"],
                )
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"not a pigeon note: {exc}") from None

    # outbound
    @property
    def business_number(self) -> str:
        return LOFT

    def send(self, to: str, message: Any) -> SendReceipt:
        text = message.body if isinstance(message, Text) else str(message)
        response = self._client.post("/v1/flights", json={"to": to, "note": text})
        if response.status_code != 201:
            raise ProviderError(response.text, provider=self.name, http_status=response.status_code)
        data = response.json()
        return SendReceipt(
            provider=self.name,
            message_id=data["flight"],
            status=data["state"],
            raw=data,
            to=to,
            kind="text",
            sent_at=datetime.now(timezone.utc),
        )

    async def send_async(self, to: str, message: Any) -> SendReceipt:
        return self.send(to, message)

    def download_media(self, ref: MediaRef) -> bytes:
        raise NotImplementedError("pigeons carry no media")

    async def download_media_async(self, ref: MediaRef) -> bytes:
        raise NotImplementedError("pigeons carry no media")

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        self.close()


def pigeon_request(msg_id: str = "note-1", text: str = "hi", *, secret: str = SECRET) -> WebhookRequest:
    body = json.dumps(
        {
            "msg_id": msg_id,
            "from": "5511987654321",
            "loft": LOFT,
            "text": text,
            "ts": int(datetime.now().timestamp()),
        }
    ).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Pigeon-Signature": signature}
    return WebhookRequest("POST", URL, headers, None, body)


@pytest.fixture
def api() -> Iterator[PigeonAPI]:
    fake = PigeonAPI()
    yield fake
    fake.close()


@pytest.fixture
def bot(api: PigeonAPI) -> Iterator[Bot]:
    settings = Settings(_env_file=None, meta_app_secret="meta-secret", twilio_auth_token="t" * 32)
    with Bot(settings, store=MemoryStore(), providers={"pigeon": Pigeon(api.base_url)}, inline=True) as bot:

        @bot.on_message
        def echo(message: InboundMessage, ctx: Any) -> None:
            ctx.reply(f"coo: {message.text}")

        yield bot


def test_the_provider_satisfies_both_protocols(api: PigeonAPI) -> None:
    pigeon = Pigeon(api.base_url)
    assert isinstance(pigeon, WebhookReader) and isinstance(pigeon, Provider)
    pigeon.close()


def test_a_message_in_produces_a_reply_out_on_the_same_provider(bot: Bot, api: PigeonAPI) -> None:
    response = bot.handle(pigeon_request(text="hello"))

    assert (response.status, response.body) == (200, b"coo")
    assert api.flights == [{"to": "5511987654321", "note": "coo: hello"}]
    rows = bot.store.list_log()
    assert {(row.provider, row.direction) for row in rows} == {("pigeon", "in"), ("pigeon", "out")}


def test_its_signature_is_checked_and_a_forgery_handled_by_nobody(bot: Bot, api: PigeonAPI) -> None:
    response = bot.handle(pigeon_request(secret="forged"))

    assert response.status == 403 and b"X-Pigeon-Signature" in response.body
    assert api.flights == [] and bot.store.list_log() == []


def test_a_retried_note_is_answered_once(bot: Bot, api: PigeonAPI) -> None:
    bot.handle(pigeon_request("note-9"))
    bot.handle(pigeon_request("note-9"))

    assert len(api.flights) == 1


def test_a_malformed_note_is_a_clear_400(bot: Bot) -> None:
    body = b'{"msg_id": "x"}'
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = WebhookRequest("POST", URL, {"X-Pigeon-Signature": signature}, None, body)

    response = bot.handle(request)

    assert response.status == 400 and b"not a pigeon note" in response.body


def test_the_built_in_providers_still_read_their_webhooks_beside_it(bot: Bot) -> None:
    from eki_whatsapp.testing import meta_text

    response = bot.handle(meta_text("hola").request(secret="meta-secret"))

    assert response.status == 200
    assert [row.provider for row in bot.store.list_log() if row.direction == "in"] == ["meta"]
