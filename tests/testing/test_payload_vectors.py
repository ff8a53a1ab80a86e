"""The builders reproduce docs/wire.md §11's test vectors byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import parse_qsl

from eki_whatsapp import security
from eki_whatsapp.testing import meta_batch, meta_status, meta_text, twilio_status, twilio_text

from .conftest import APP_SECRET

DATA = Path(__file__).resolve().parent.parent / "data"

M1_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":'
    b'{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",'
    b'"phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},'
    b'"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0Mzk'
    b'VAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":'
    b'{"body":"Does it come in another color?"}}]},"field":"messages"}]}]}'
)
T1_TOKEN = "0123456789abcdef0123456789abcdef"
T1_URL = "https://bot.example.com/twilio/whatsapp/inbound"
T1_SID = "SM0123456789abcdef0123456789abcdef"


def m1():
    return meta_text(
        "Does it come in another color?",
        message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        timestamp=1749416383,
    )


def m2():
    return meta_text(
        "Olá 👋", sender="5511987654321", profile_name="José", message_id="wamid.TEST2", timestamp=1749416400
    )


def test_m1_bytes_and_signature():
    payload = m1()
    assert payload.body == M1_BODY
    assert len(payload.body) == 499
    assert hashlib.sha256(payload.body).hexdigest() == (
        "e5d6802060d8c42425af529047975e78af23908d8bd021f29ebd24e319f3a76b"
    )
    assert payload.signature(APP_SECRET) == (
        "sha256=8bf0976b2b3ab631bc17b09e08d01c25ac39ba8de1010a2b40f5f517f6ce366b"
    )


def test_m1_matches_shared_test_data_file():
    assert m1().body == (DATA / "meta_m1.json").read_bytes().rstrip(b"\n")


def test_m2_escapes_non_ascii_like_meta():
    payload = m2()
    assert b"Jos\\u00e9" in payload.body and b"Ol\\u00e1 \\ud83d\\udc4b" in payload.body
    assert payload.body.isascii() and len(payload.body) == 439
    assert hashlib.sha256(payload.body).hexdigest() == (
        "6d4892820f6a9bf45d880aef7d024a7c38d9c96cee2263a4cd395cbb74a39dc7"
    )
    assert payload.signature(APP_SECRET) == (
        "sha256=06f2c6d7550c73e6dc23a62a8e8c10ecf75ed5e0e8ea2f457f517a54fc63c65e"
    )
    # re-serialised with raw UTF-8 it must not validate (docs/wire.md M2 negative check)
    raw = json.dumps(payload.data, ensure_ascii=False, separators=(",", ":")).encode()
    assert security.meta_signature(APP_SECRET, raw) == (
        "sha256=948a8ea9cd387faa4673e7451bb992b34c6488f23ef986654b8ac1cca062de7d"
    )
    assert not security.verify_meta_signature(APP_SECRET, raw, payload.signature(APP_SECRET))


def test_t1_wire_body_and_signature():
    payload = twilio_text("Olá, tudo bem?", message_sid=T1_SID)
    assert payload.body == (DATA / "twilio_t1.form").read_bytes().rstrip(b"\n")
    assert payload.signature(T1_TOKEN, T1_URL) == "aN4GKladzw1i/pVQ6LLASh3qJ7c="
    assert dict(parse_qsl(payload.body.decode())) == dict(payload.params)
    assert payload.signature(T1_TOKEN, "https://bot.example.com:443/twilio/whatsapp/inbound") == (
        "qNm3pGQp8xb0ICb4mHBA1cNHtn8="
    )


def test_signed_request_carries_exact_bytes_and_headers():
    request = m1().request("https://bot.example.com/webhook", secret=APP_SECRET)
    assert request.body == M1_BODY
    assert request.content_type == "application/json"
    assert request.header("X-Hub-Signature-256") == m1().signature(APP_SECRET)

    twilio = twilio_text("Olá, tudo bem?", message_sid=T1_SID)
    request = twilio.request(T1_URL, secret=T1_TOKEN)
    assert request.header("x-twilio-signature") == "aN4GKladzw1i/pVQ6LLASh3qJ7c="
    assert request.content_type == "application/x-www-form-urlencoded"


def test_twilio_signature_over_public_url_when_behind_a_proxy():
    payload = twilio_text("hi")
    request = payload.request("http://10.0.0.5:8080/wh", secret=T1_TOKEN, signed_url=T1_URL)
    assert request.url == "http://10.0.0.5:8080/wh"
    assert request.header("x-twilio-signature") == payload.signature(T1_TOKEN, T1_URL)


def test_unsigned_request_has_no_signature_header():
    assert m1().request().header("x-hub-signature-256") is None
    assert twilio_text("x").request().header("x-twilio-signature") is None


def test_generated_ids_are_unique():
    assert m1().message_id == m1().message_id  # explicit id kept
    assert meta_text("a").message_id != meta_text("a").message_id
    assert twilio_text("a").message_id != twilio_text("a").message_id


def test_batch_keeps_every_change_and_merge_puts_them_in_one_value():
    first, second = meta_text("one"), meta_status("wamid.X", "read")
    batch = meta_batch(first, second)
    entry = batch.data["entry"]
    assert len(entry) == 1 and len(entry[0]["changes"]) == 2
    merged = meta_batch(first, meta_text("two"), second, merge=True).data
    value = merged["entry"][0]["changes"][0]["value"]
    assert [m["text"]["body"] for m in value["messages"]] == ["one", "two"]
    assert value["statuses"][0]["id"] == "wamid.X"
    assert len(value["contacts"]) == 1  # same user listed once


def test_twilio_status_shape():
    params = dict(twilio_status("SMabc", "failed", to="+5511987654321", error_code=63016).params)
    assert params["MessageStatus"] == "failed" and params["ErrorCode"] == "63016"
    assert params["To"] == "whatsapp:+5511987654321" and params["From"] == "whatsapp:+14155238886"
    assert "outside the allowed window" in params["ChannelStatusMessage"]
