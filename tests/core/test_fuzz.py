"""Property: Bot.handle answers every request with a status below 500, whatever it gets."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eki_whatsapp import Bot, MemoryStore, WebhookRequest
from eki_whatsapp.security import meta_signature, twilio_signature

from .helpers import APP_SECRET, TWILIO_TOKEN, make_settings

BOT = Bot(make_settings(), store=MemoryStore(), providers={}, inline=True)
UNSIGNED = Bot(make_settings(meta_app_secret=None), store=MemoryStore(), providers={}, inline=True)
URL = "https://bot.example.com/webhook"

header_names = st.sampled_from(
    ["Content-Type", "X-Hub-Signature-256", "X-Twilio-Signature", "Content-Length", "X-Other", "content-type"]
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
        "application/json; charset=utf-8",
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def meta_shaped() -> st.SearchStrategy[dict[str, Any]]:
    """Bodies that look like Meta's but with arbitrary parts."""
    message = st.dictionaries(
        st.sampled_from(
            ["from", "id", "timestamp", "type", "text", "image", "context", "location", "interactive"]
        ),
        json_values,
        max_size=6,
    )
    value = st.fixed_dictionaries(
        {},
        optional={
            "metadata": json_values,
            "contacts": st.lists(json_values, max_size=2),
            "messages": st.lists(message | json_values, max_size=3),
            "statuses": st.lists(json_values, max_size=3),
            "errors": json_values,
        },
    )
    change = st.fixed_dictionaries(
        {"field": st.sampled_from(["messages", "x"]) | json_values, "value": value | json_values}
    )
    entry = st.fixed_dictionaries({"id": json_values, "changes": st.lists(change, max_size=3) | json_values})
    return st.fixed_dictionaries(
        {"object": st.just("whatsapp_business_account"), "entry": st.lists(entry | json_values, max_size=3)}
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "post"]),
    body=st.binary(max_size=2000),
    headers=st.dictionaries(header_names, st.text(max_size=80), max_size=4),
    query=st.dictionaries(
        st.sampled_from(["hub.mode", "hub.challenge", "hub.verify_token", "bodySHA256", "x"]),
        st.text(max_size=20),
    ),
)
def test_arbitrary_requests_never_5xx(
    method: str, body: bytes, headers: dict[str, str], query: dict[str, str]
) -> None:
    for bot in (BOT, UNSIGNED):
        response = bot.handle(WebhookRequest(method, URL, headers, query, body))
        assert 200 <= response.status < 500


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=meta_shaped())
def test_signed_meta_shaped_bodies_never_5xx(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(APP_SECRET, raw)}
    response = BOT.handle(WebhookRequest("POST", URL, headers, None, raw))
    assert response.status in (200, 400)


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=12),
    ctype=content_types,
)
def test_signed_twilio_forms_never_5xx(params: dict[str, str], ctype: str) -> None:
    from urllib.parse import urlencode

    body = urlencode(params).encode()
    headers = {
        "Content-Type": ctype,
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, URL, params.items()),
    }
    response = BOT.handle(WebhookRequest("POST", URL, headers, None, body))
    assert 200 <= response.status < 500
