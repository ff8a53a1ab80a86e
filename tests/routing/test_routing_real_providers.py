"""The Router with the real MetaCloud and Twilio senders, HTTP mocked with respx: a Meta outage
(503 after retries) fails a template over to Twilio's Content API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from eki_whatsapp.messages import Template
from eki_whatsapp.providers import MetaCloud, RetryPolicy, Twilio
from eki_whatsapp.routing import Router

from .conftest import META_ID, TWILIO_NUMBER, USER, make_settings
from .fakes import Clock

GRAPH = f"https://graph.facebook.com/v26.0/{META_ID}/messages"
ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
PROMO = Template("spring_promo", "en_US", body=["Ana"], content_sid="HX" + "1" * 32)


def no_wait() -> RetryPolicy:
    return RetryPolicy(max_attempts=2, sleep=lambda _s: None)


@pytest.fixture
def providers() -> Any:
    meta = MetaCloud("EAAG-test-token", META_ID, retry=no_wait())
    twilio = Twilio(
        ACCOUNT, "0123456789abcdef0123456789abcdef", from_="whatsapp:+" + TWILIO_NUMBER, retry=no_wait()
    )
    yield {"meta": meta, "twilio": twilio}
    meta.close()
    twilio.close()


@respx.mock
def test_meta_outage_fails_over_to_twilio_content_template(providers: Any, store: Any, clock: Clock) -> None:
    outage = respx.post(GRAPH).mock(
        return_value=httpx.Response(
            503,
            json={
                "error": {
                    "message": "Service temporarily unavailable",
                    "type": "OAuthException",
                    "code": 131016,
                }
            },
        )
    )
    twilio_api = respx.post(TWILIO).mock(
        return_value=httpx.Response(
            201,
            json={"sid": "SM" + "f" * 32, "status": "queued", "to": "whatsapp:+" + USER, "error_code": None},
        )
    )
    router = Router(providers, store, make_settings(), clock=clock)
    receipt = router.send(USER, PROMO, category="marketing")
    assert outage.call_count == 2  # Meta's own retries first
    assert receipt.provider == "twilio" and receipt.message_id == "SM" + "f" * 32
    form = parse_qs(twilio_api.calls.last.request.content.decode())
    assert form["ContentSid"] == ["HX" + "1" * 32]
    assert json.loads(form["ContentVariables"][0]) == {"1": "Ana"}
    assert form["To"] == ["whatsapp:+" + USER]
    failed, sent = store.list_log(direction="out", limit=5)[::-1]
    assert (failed.provider, failed.status, failed.error_code) == ("meta", "failed", 131016)
    assert (sent.provider, sent.reason, sent.message_id) == (
        "twilio",
        "failover:ProviderDown",
        "SM" + "f" * 32,
    )
    assert router.costs.report("2026-09").line("twilio", "marketing").known_amount > 0
