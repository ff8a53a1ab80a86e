"""Signature checks against the docs/wire.md §11 vectors, directly and through Bot.handle."""

from __future__ import annotations

import json

import pytest
from twilio.request_validator import RequestValidator

from eki_whatsapp import WebhookRequest
from eki_whatsapp.security import (
    body_sha256,
    meta_signature,
    twilio_signature,
    verify_meta_signature,
    verify_twilio_signature,
)

from .helpers import APP_SECRET, T1_PARAMS, TWILIO_TOKEN, data, meta_request, twilio_request

M1_SIG = "sha256=8bf0976b2b3ab631bc17b09e08d01c25ac39ba8de1010a2b40f5f517f6ce366b"
M2_SIG = "sha256=06f2c6d7550c73e6dc23a62a8e8c10ecf75ed5e0e8ea2f457f517a54fc63c65e"
M2_REENCODED_SIG = "sha256=948a8ea9cd387faa4673e7451bb992b34c6488f23ef986654b8ac1cca062de7d"
T1_URL = "https://bot.example.com/twilio/whatsapp/inbound"


def test_m1_signature_matches_vector() -> None:
    body = data("meta_m1.json")
    assert meta_signature(APP_SECRET, body) == M1_SIG
    assert verify_meta_signature(APP_SECRET, body, M1_SIG)
    assert verify_meta_signature(APP_SECRET, body, M1_SIG.upper().replace("SHA256=", "sha256="))


def test_m2_signature_is_over_escaped_bytes_and_reencoding_fails() -> None:
    body = data("meta_m2.json")
    assert meta_signature(APP_SECRET, body) == M2_SIG
    reencoded = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode()
    assert meta_signature(APP_SECRET, reencoded) == M2_REENCODED_SIG
    assert not verify_meta_signature(APP_SECRET, reencoded, M2_SIG)
    assert not verify_meta_signature(APP_SECRET, body, M2_REENCODED_SIG)


def test_meta_signature_rejects_wrong_secret_and_garbage() -> None:
    body = data("meta_m1.json")
    assert not verify_meta_signature("another-secret", body, M1_SIG)
    assert not verify_meta_signature(APP_SECRET, body, None)
    assert not verify_meta_signature(APP_SECRET, body, "sha1=abc")
    assert not verify_meta_signature(APP_SECRET, body, "sha256=é")


def test_t0_twilio_sdk_vector() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_t1_signature_and_port_variants() -> None:
    items = list(T1_PARAMS.items())
    assert twilio_signature(TWILIO_TOKEN, T1_URL, items) == "aN4GKladzw1i/pVQ6LLASh3qJ7c="
    with_port = "https://bot.example.com:443/twilio/whatsapp/inbound"
    assert twilio_signature(TWILIO_TOKEN, with_port, items) == "qNm3pGQp8xb0ICb4mHBA1cNHtn8="
    # either spelling validates against either URL form, like the SDK
    for url in (T1_URL, with_port):
        for sig in ("aN4GKladzw1i/pVQ6LLASh3qJ7c=", "qNm3pGQp8xb0ICb4mHBA1cNHtn8="):
            assert verify_twilio_signature([TWILIO_TOKEN], url, items, sig)
    http_sig = "fAjpZWgoIMDLz5RP48V36yAt/N4="
    assert twilio_signature(TWILIO_TOKEN, T1_URL.replace("https", "http"), items) == http_sig
    assert not verify_twilio_signature([TWILIO_TOKEN], T1_URL, items, http_sig)
    assert not verify_twilio_signature(["0" * 32], T1_URL, items, "aN4GKladzw1i/pVQ6LLASh3qJ7c=")


def test_twilio_signature_agrees_with_official_validator() -> None:
    validator = RequestValidator(TWILIO_TOKEN)
    params = dict(T1_PARAMS, Body="emoji 👋 and ação")
    sig = twilio_signature(TWILIO_TOKEN, T1_URL, params.items())
    assert validator.validate(T1_URL, params, sig)
    assert verify_twilio_signature(
        [TWILIO_TOKEN], T1_URL, params.items(), validator.compute_signature(T1_URL, params)
    )


def test_token_rotation_accepts_secondary_token() -> None:
    items = list(T1_PARAMS.items())
    sig = twilio_signature("secondary-token", T1_URL, items)
    assert verify_twilio_signature([TWILIO_TOKEN, "secondary-token"], T1_URL, items, sig)
    assert not verify_twilio_signature([TWILIO_TOKEN], T1_URL, items, sig)


def test_t2_body_sha256() -> None:
    body = b'{"MessageSid":"SM0123456789abcdef0123456789abcdef","MessageStatus":"delivered"}'
    assert body_sha256(body) == "dc2258e4a020db93938f1f9f391df93c029c22db97cc2bcab82f592f548a4f31"
    url = f"https://bot.example.com/twilio/events?bodySHA256={body_sha256(body)}"
    assert twilio_signature(TWILIO_TOKEN, url) == "vepkZ4FkMobO+gzh/uXXSzs/t/8="


# --- through the pipeline --------------------------------------------------------------------
def test_pipeline_accepts_m1_and_m2(bot) -> None:
    for name, sig in (("meta_m1.json", M1_SIG), ("meta_m2.json", M2_SIG)):
        req = WebhookRequest(
            "POST",
            "https://bot.example.com/webhook",
            {"content-type": "application/json", "x-hub-signature-256": sig},
            None,
            data(name),
        )
        assert bot.handle(req).status == 200
    texts = sorted(row.text for row in bot.store.list_log())
    assert texts == ["Does it come in another color?", "Olá 👋"]


def test_pipeline_rejects_reencoded_m2_and_processes_nothing(bot) -> None:
    body = json.dumps(json.loads(data("meta_m2.json")), ensure_ascii=False, separators=(",", ":")).encode()
    req = WebhookRequest(
        "POST",
        "https://x/webhook",
        {"Content-Type": "application/json", "X-Hub-Signature-256": M2_SIG},
        None,
        body,
    )
    seen = []
    bot.on_message(seen.append)
    response = bot.handle(req)
    assert response.status == 403
    assert seen == []
    assert bot.store.list_log() == []


def test_pipeline_missing_meta_signature_is_401(bot) -> None:
    response = bot.handle(meta_request(data("meta_m1.json"), secret=None))
    assert response.status == 401
    assert b"X-Hub-Signature-256" in response.body
    assert bot.store.list_log() == []


def test_pipeline_t1_form_post(bot) -> None:
    req = WebhookRequest(
        "POST",
        T1_URL,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "aN4GKladzw1i/pVQ6LLASh3qJ7c=",
        },
        None,
        data("twilio_t1.form"),
    )
    response = bot.handle(req)
    assert response.status == 200
    assert response.content_type is not None and response.content_type.startswith("text/xml")
    assert response.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [row] = bot.store.list_log()
    assert (row.provider, row.text, row.sender) == ("twilio", "Olá, tudo bem?", "5511987654321")


@pytest.mark.parametrize(
    ("url", "signed_url", "expected"),
    [
        (T1_URL, "https://bot.example.com:443/twilio/whatsapp/inbound", 200),
        ("https://bot.example.com:443/twilio/whatsapp/inbound", T1_URL, 200),
        (T1_URL, "http://bot.example.com/twilio/whatsapp/inbound", 403),
    ],
)
def test_pipeline_twilio_url_variants(bot, url: str, signed_url: str, expected: int) -> None:
    assert bot.handle(twilio_request(T1_PARAMS, url=url, signed_url=signed_url)).status == expected


def test_pipeline_twilio_wrong_token_and_missing_header(bot) -> None:
    assert bot.handle(twilio_request(T1_PARAMS, token="f" * 32)).status == 403
    req = twilio_request(T1_PARAMS)
    unsigned = WebhookRequest(
        "POST", req.url, {"Content-Type": "application/x-www-form-urlencoded"}, None, req.body
    )
    assert bot.handle(unsigned).status == 401
    assert bot.store.list_log() == []


def test_pipeline_uses_public_url_behind_a_proxy(store) -> None:
    from eki_whatsapp import Bot

    from .helpers import make_settings

    proxied = Bot(make_settings(whatsapp_webhook_url=T1_URL), store=store, providers={}, inline=True)
    # the app sees the internal URL; Twilio signed the public one
    req = twilio_request(T1_PARAMS, url="http://10.0.0.5:8000/twilio/whatsapp/inbound", signed_url=T1_URL)
    assert proxied.handle(req).status == 200
    assert len(store.list_log()) == 1


def test_pipeline_t2_json_body(bot) -> None:
    body = b'{"MessageSid":"SM0123456789abcdef0123456789abcdef","MessageStatus":"delivered"}'
    url = f"https://bot.example.com/twilio/events?bodySHA256={body_sha256(body)}"
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": "vepkZ4FkMobO+gzh/uXXSzs/t/8="}
    statuses = []
    bot.on_status(statuses.append)
    assert bot.handle(WebhookRequest("POST", url, headers, None, body)).status == 200
    assert [(s.provider, s.message_id, s.status) for s in statuses] == [
        ("twilio", "SM0123456789abcdef0123456789abcdef", "delivered")
    ]
    # same URL and signature but a tampered body: the hash no longer matches
    tampered = body.replace(b"delivered", b"read")
    assert bot.handle(WebhookRequest("POST", url, headers, None, tampered)).status == 403
