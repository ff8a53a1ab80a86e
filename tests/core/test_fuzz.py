"""Property: Bot.handle answers every request with a status below 500, whatever it gets."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eki_whatsapp import Bot, Event, InboundMessage, MemoryStore, SQLiteStore, StatusUpdate, WebhookRequest
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


# --- poison: values no store may be trusted to hold, in signed bodies, through SQLite ------------
# Each class once raised out of Bot.handle (or answered 503 forever): a lone surrogate or NUL in
# text, a number past 64 bits or past a float, JSON nested deep, a forged NumMedia, 100,000 '['.
SQLITE_DIR = tempfile.mkdtemp(prefix="eki-fuzz-")
POISONED = Bot(
    make_settings(), store=SQLiteStore(Path(SQLITE_DIR) / "fuzz.sqlite3"), providers={}, inline=True
)
HANDLED: list[Event] = []
POISONED.on_message(HANDLED.append)
POISONED.on_status(HANDLED.append)
_ids = itertools.count()

surrogates = st.integers(0xD800, 0xDFFF).map(lambda c: f'"a\\u{c:04x}b"')
poison_tokens = st.one_of(
    surrogates,
    st.just('"a\\u0000b"'),
    st.just('"\\udc00\\ud800\\u0000"'),
    st.integers(2**63, 10**400).map(str),
    st.integers(-(10**400), -(2**63) - 1).map(str),
    st.sampled_from(["1e400", "-1e400", "Infinity", "-Infinity", "NaN", "1" + "0" * 400]),
    st.integers(1, 950).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 300).map(lambda n: '{"a":' * n + "1" + "}" * n),
)
#: Where a poison value goes: a path into a message or a status.
message_spots = st.sampled_from(
    [
        ("text", "body"),
        ("from",),
        ("id",),
        ("timestamp",),
        ("type",),
        ("location", "latitude"),
        ("location", "longitude"),
        ("context", "id"),
        ("extra",),
        ("interactive", "nfm_reply", "response_json"),
    ]
)
status_spots = st.sampled_from(
    [
        ("errors", 0, "code"),
        ("errors", 0, "title"),
        ("recipient_id",),
        ("timestamp",),
        ("pricing", "category"),
    ]
)


def _poisoned_message(spot: tuple[str, ...]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "from": "5511987654321",
        "id": f"wamid.POISON{next(_ids)}",
        "timestamp": "1749416400",
        "type": spot[0] if spot[0] in ("location", "interactive") else "text",
        "text": {"body": "x"},
        "location": {"latitude": 1.5, "longitude": 2.5},
        "interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}},
        "context": {"id": "wamid.PREVIOUS"},
    }
    _put(message, spot)
    return message


def _poisoned_status(spot: tuple[Any, ...]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "id": f"wamid.OUT{next(_ids)}",
        "status": "failed",
        "timestamp": "1749416400",
        "recipient_id": "5511987654321",
        "errors": [{"code": 131026, "title": "undeliverable"}],
        "pricing": {"category": "service"},
    }
    _put(status, spot)
    return status


def _put(target: Any, spot: tuple[Any, ...]) -> None:
    for key in spot[:-1]:
        target = target[key]
    target[spot[-1]] = "__POISON__"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tokens=st.lists(poison_tokens, min_size=1, max_size=3),
    spots=st.lists(message_spots, min_size=1, max_size=3),
    status_spot=status_spots,
    good_at=st.integers(0, 3),
)
def test_signed_meta_batches_with_poison_answer_below_500_and_handle_the_good(
    tokens: list[str], spots: list[tuple[str, ...]], status_spot: tuple[Any, ...], good_at: int
) -> None:
    good = {"from": "5511987654321", "id": f"wamid.GOOD{next(_ids)}", "timestamp": "1749416400"}
    good |= {"type": "text", "text": {"body": "good"}}
    messages = [_poisoned_message(spot) for spot in spots]
    messages.insert(min(good_at, len(messages)), good)
    good_status = {"id": f"wamid.OUTGOOD{next(_ids)}", "status": "delivered", "timestamp": "1749416400"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "__POISON__"}, "wa_id": "5511987654321"}],
        "messages": messages,
        "statuses": [_poisoned_status(status_spot), good_status],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    raw = json.dumps(envelope).encode()
    for token in itertools.cycle(tokens):
        if b'"__POISON__"' not in raw:
            break
        raw = raw.replace(b'"__POISON__"', token.encode(), 1)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(APP_SECRET, raw)}
    HANDLED.clear()

    response = POISONED.handle(WebhookRequest("POST", URL, headers, None, raw))

    assert response.status < 500
    if response.status != 200:  # only a body json cannot read at all (nesting past its limit)
        assert response.status == 400
        return
    ids = {e.id for e in HANDLED if isinstance(e, InboundMessage)}
    assert good["id"] in ids
    assert good_status["id"] in {e.message_id for e in HANDLED if isinstance(e, StatusUpdate)}
    row = POISONED.store.get_message("meta", good["id"])
    assert row is not None and row.raw == good  # the raw kept, as received
    for event in HANDLED:  # every event a handler got is stored, with its raw data
        if isinstance(event, InboundMessage):
            logged = POISONED.store.get_message("meta", event.id)
            assert logged is not None and logged.raw
        else:
            assert isinstance(event, StatusUpdate)
            assert [r.raw for r in POISONED.store.statuses("meta", event.message_id)]


twilio_poison = st.one_of(
    st.just("a\x00b"),
    st.integers(2**63, 10**300).map(str),
    st.sampled_from(["1e400", "-1e400", "inf", "nan", "1" + "0" * 400, "[" * 100_000, "{" * 5000]),
    st.integers(10**6, 10**18).map(str),
    st.text(max_size=30),
)
twilio_spots = st.sampled_from(
    [
        "Body",
        "NumMedia",
        "Latitude",
        "Longitude",
        "ChannelMetadata",
        "ProfileName",
        "ErrorCode",
        "From",
        "MessageSid",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=twilio_poison, spot=twilio_spots, status=st.booleans())
def test_signed_twilio_posts_with_poison_answer_below_500_and_are_handled(
    value: str, spot: str, status: bool
) -> None:
    from urllib.parse import urlencode

    sid = f"SM{next(_ids):032d}"
    params = {
        "MessageSid": sid,
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "From": "whatsapp:+5511987654321",
        "To": "whatsapp:+14155238886",
        "Latitude": "1.5",
        "Longitude": "2.5",
    }
    params |= (
        {"MessageStatus": "undelivered", "ErrorCode": "63016"} if status else {"Body": "hi", "NumMedia": "1"}
    )
    params[spot] = value
    body = urlencode(params).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, URL, params.items()),
    }
    HANDLED.clear()

    response = POISONED.handle(WebhookRequest("POST", URL, headers, None, body))

    assert response.status < 500
    if response.status != 200:
        assert spot == "MessageSid"  # a request with no message sid is not Twilio's: 4xx
        return
    [event] = HANDLED
    if isinstance(event, InboundMessage):
        row = POISONED.store.get_message("twilio", event.id)
        assert (
            row is not None
            and row.raw
            and len(event.media) <= 1 + sum(k.startswith("MediaUrl") for k in params)
        )
    else:
        assert isinstance(event, StatusUpdate)
        assert POISONED.store.statuses("twilio", event.message_id)
