"""Builders for the core webhook tests: docs/wire.md secrets, signed requests, Meta payload pieces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from eki_whatsapp import Settings, WebhookRequest
from eki_whatsapp.security import meta_signature, twilio_signature

DATA = Path(__file__).parent.parent / "data"

APP_SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"  # docs/wire.md M1/M2
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"  # docs/wire.md T1/T2
VERIFY_TOKEN = "my-verify-token"
WEBHOOK_URL = "https://bot.example.com/twilio/whatsapp/inbound"


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "whatsapp_provider": "dual",
        "meta_whatsapp_token": "EAAG-test-token",
        "meta_phone_number_id": "106540352242922",
        "meta_verify_token": VERIFY_TOKEN,
        "meta_app_secret": APP_SECRET,
        "twilio_account_sid": "AC0123456789abcdef0123456789abcdef",
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_whatsapp_number": "whatsapp:+14155238886",
        "whatsapp_store_url": "memory://",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def meta_request(
    body: bytes | dict[str, Any], *, secret: str | None = APP_SECRET, **headers: str
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    hdrs = {"Content-Type": "application/json"}
    if secret is not None:
        hdrs["X-Hub-Signature-256"] = meta_signature(secret, raw)
    hdrs.update(headers)
    return WebhookRequest("POST", "https://bot.example.com/webhook/whatsapp/", hdrs, None, raw)


def twilio_request(
    params: dict[str, str] | list[tuple[str, str]],
    *,
    url: str = WEBHOOK_URL,
    token: str = TWILIO_TOKEN,
    signed_url: str | None = None,
) -> WebhookRequest:
    items = list(params.items()) if isinstance(params, dict) else list(params)
    body = urlencode(items).encode()
    sig = twilio_signature(token, signed_url or url, items)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}
    return WebhookRequest("POST", url, headers, None, body)


def meta_envelope(value: dict[str, Any], *, field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": field, "value": value}]}],
    }


def meta_value(messages: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
    }
    if messages is not None:
        value["contacts"] = [{"profile": {"name": "Ana"}, "wa_id": "5511987654321"}]
        value["messages"] = messages
    value.update(extra)
    return value


def meta_msg(kind: str, obj: Any = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "from": "5511987654321",
        "id": f"wamid.{kind}.{abs(hash(json.dumps(obj, sort_keys=True, default=str))) % 10**8}",
        "timestamp": "1749416400",
        "type": kind,
    }
    if obj is not None:
        m[kind] = obj
    m.update(extra)
    return m


T1_PARAMS: dict[str, str] = {
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "ApiVersion": "2010-04-01",
    "Body": "Olá, tudo bem?",
    "From": "whatsapp:+5511987654321",
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "MessageType": "text",
    "NumMedia": "0",
    "NumSegments": "1",
    "ProfileName": "José",
    "ReferralNumMedia": "0",
    "SmsMessageSid": "SM0123456789abcdef0123456789abcdef",
    "SmsSid": "SM0123456789abcdef0123456789abcdef",
    "SmsStatus": "received",
    "To": "whatsapp:+14155238886",
    "WaId": "5511987654321",
}
