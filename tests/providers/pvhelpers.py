"""Shared builders for the provider tests (no __init__: imported by name from this folder)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from eki_whatsapp import Settings, WebhookRequest
from eki_whatsapp.providers import MetaCloud, RetryPolicy, Twilio
from eki_whatsapp.security import meta_signature, twilio_signature

TOKEN = "EAAG-secret-test-token"
PHONE_ID = "106540352242922"  # docs/wire.md §3.5
GRAPH = "https://graph.facebook.com/v26.0"
META_MESSAGES = f"{GRAPH}/{PHONE_ID}/messages"

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"  # not a substring of ACCOUNT_SID
TWILIO_FROM = "whatsapp:+14155238886"
TWILIO_MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
TWILIO_CONTENT = "https://content.twilio.com/v1/Content"


def content_refused() -> httpx.Response:
    """The Content API refusing a create (https://www.twilio.com/docs/api/errors/20001 shape)."""
    return httpx.Response(
        400,
        json={"code": 20001, "message": "Invalid content", "more_info": "", "status": 400},
    )


APP_SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"  # docs/wire.md M1
WEBHOOK_URL = "https://bot.example.com/webhook"
USER = "16505551234"


class Sleeps:
    """A RetryPolicy sleeper that records waits and a clock that advances by them (no real waiting)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def clock(self) -> float:
        return self.now

    def policy(self, **options: Any) -> RetryPolicy:
        values: dict[str, Any] = {
            "sleep": self.sleep,
            "async_sleep": self.async_sleep,
            "clock": self.clock,
            "random": lambda: 1.0,
        }
        values.update(options)
        return RetryPolicy(**values)


def meta(sleeps: Sleeps | None = None, **options: Any) -> MetaCloud:
    options.setdefault("retry", (sleeps or Sleeps()).policy())
    return MetaCloud(TOKEN, PHONE_ID, **options)


def twilio(sleeps: Sleeps | None = None, **options: Any) -> Twilio:
    options.setdefault("retry", (sleeps or Sleeps()).policy())
    options.setdefault("from_", TWILIO_FROM)
    return Twilio(ACCOUNT_SID, AUTH_TOKEN, **options)


def meta_ok(message_id: str = "wamid.OUT1", to: str = USER, status: str | None = None) -> httpx.Response:
    msg: dict[str, Any] = {"id": message_id}
    if status:
        msg["message_status"] = status
    return httpx.Response(
        200,
        json={"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [msg]},
    )


def meta_fail(code: int, http_status: int = 400, message: str = "failed", **headers: str) -> httpx.Response:
    body = {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "AazXVQ3",
        }
    }
    return httpx.Response(http_status, json=body, headers=headers)


def twilio_ok(sid: str = "SM0123456789abcdef0123456789abcdef", status: str = "queued") -> httpx.Response:
    return httpx.Response(
        201,
        json={
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "status": status,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "num_media": "0",
        },
    )


def twilio_fail(code: int, http_status: int = 400, **headers: str) -> httpx.Response:
    body = {
        "code": code,
        "message": f"Twilio error {code}",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": http_status,
    }
    return httpx.Response(http_status, json=body, headers=headers)


def body_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


def form(request: httpx.Request) -> list[tuple[str, str]]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return parse_qsl(request.content.decode(), keep_blank_values=True)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "whatsapp_provider": "meta",
        "meta_whatsapp_token": TOKEN,
        "meta_phone_number_id": PHONE_ID,
        "meta_app_secret": APP_SECRET,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_whatsapp_number": TWILIO_FROM,
        "whatsapp_webhook_url": WEBHOOK_URL,
        "whatsapp_store_url": "memory://",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def meta_webhook(value: dict[str, Any]) -> WebhookRequest:
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(APP_SECRET, raw)}
    return WebhookRequest("POST", WEBHOOK_URL, headers, None, raw)


def meta_metadata() -> dict[str, Any]:
    return {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID}


def meta_inbound_text(text: str, message_id: str = "wamid.IN1", user: str = USER) -> WebhookRequest:
    return meta_webhook(
        {
            "messaging_product": "whatsapp",
            "metadata": meta_metadata(),
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": user}],
            "messages": [
                {
                    "from": user,
                    "id": message_id,
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
    )


def meta_status(
    message_id: str, status: str, user: str = USER, errors: list[Any] | None = None
) -> WebhookRequest:
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": user,
    }
    if errors:
        item["errors"] = errors
    return meta_webhook({"messaging_product": "whatsapp", "metadata": meta_metadata(), "statuses": [item]})


def twilio_webhook(params: dict[str, str]) -> WebhookRequest:
    items = list(params.items())
    body = urlencode(items).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, WEBHOOK_URL, items),
    }
    return WebhookRequest("POST", WEBHOOK_URL, headers, None, body)


def twilio_inbound_text(text: str, sid: str = "SM00000000000000000000000000000001") -> WebhookRequest:
    return twilio_webhook(
        {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "Body": text,
            "From": "whatsapp:+5511987654321",
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "MessageType": "text",
            "NumMedia": "0",
            "NumSegments": "1",
            "ProfileName": "José",
            "SmsStatus": "received",
            "To": TWILIO_FROM,
            "WaId": "5511987654321",
        }
    )


def twilio_status(sid: str, status: str, error_code: str | None = None) -> WebhookRequest:
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": TWILIO_FROM,
        "To": "whatsapp:+5511987654321",
        "ChannelPrefix": "whatsapp",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return twilio_webhook(params)
