"""Malformed and extreme webhook values, on every store: answered below 500, the event stored
(cleaned where the store cannot hold a value, with a log line), the raw data kept, the good
events of the same batch handled (docs/webhook.md, "Malformed and extreme input")."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot, Event, InboundMessage, MemoryStore, SQLiteStore, StatusUpdate
from eki_whatsapp.store import Store
from eki_whatsapp.testing import payloads

from .helpers import make_settings, meta_envelope, meta_msg, meta_request, meta_value, twilio_request

BIG = 10**20  # past a signed 64-bit integer


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def poison_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        store: Store = MemoryStore()
    elif request.param == "sqlite":
        store = SQLiteStore(tmp_path / "log.sqlite3")
    else:
        from eki_whatsapp.store.postgres import PostgresStore

        store = PostgresStore(request.getfixturevalue("pg_url"))  # skips without a server
    yield store
    store.close()


class Handled:
    """A bot on ``store`` (inline handling) and every event its handlers got."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.bot = Bot(make_settings(), store=store, providers={}, inline=True)
        self.events: list[Event] = []
        self.bot.on_message(self.events.append)
        self.bot.on_status(self.events.append)

    def messages(self) -> dict[str, InboundMessage]:
        return {e.id: e for e in self.events if isinstance(e, InboundMessage)}

    def statuses(self) -> list[StatusUpdate]:
        return [e for e in self.events if isinstance(e, StatusUpdate)]


@pytest.fixture
def handled(poison_store: Store) -> Iterator[Handled]:
    h = Handled(poison_store)
    yield h
    h.bot.sweeper.stop()


def meta_body(*messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None) -> bytes:
    value = meta_value(list(messages))
    if statuses is not None:
        value["statuses"] = statuses
    return json.dumps(meta_envelope(value), separators=(",", ":")).encode()  # escapes surrogates


def text(message_id: str, body: str) -> dict[str, Any]:
    return meta_msg("text", {"body": body}, id=message_id)


def holds_text(store: Store) -> bool:
    """Whether ``store`` keeps any Python text as given (only the memory store does)."""
    return isinstance(store, MemoryStore)


# --- text ----------------------------------------------------------------------------------
def test_a_lone_surrogate_in_text_is_stored_replaced_and_handled(
    handled: Handled, caplog: pytest.LogCaptureFixture
) -> None:
    response = handled.bot.handle(meta_request(meta_body(text("wamid.S", "a\ud800b"))))

    assert response.status == 200
    got = handled.messages()["wamid.S"]
    row = handled.store.get_message("meta", "wamid.S")
    assert row is not None and row.raw is not None
    assert row.raw["type"] == "text"
    if holds_text(handled.store):
        assert got.text == "a\ud800b"
    else:
        assert got.text == row.text == "a\ufffdb"  # the handler gets what was stored
        assert "cannot hold" in caplog.text


def test_nul_in_text_and_in_the_profile_name_is_stored_and_handled(handled: Handled) -> None:
    body = meta_value([text("wamid.N", "a\x00b")])
    body["contacts"][0]["profile"]["name"] = "An\x00a"
    response = handled.bot.handle(meta_request(meta_envelope(body)))

    assert response.status == 200
    got = handled.messages()["wamid.N"]
    row = handled.store.get_message("meta", "wamid.N")
    assert row is not None and row.text == got.text and got.text in ("a\x00b", "a\ufffdb")
    assert got.profile_name in ("An\x00a", "An\ufffda")


def test_nul_in_a_twilio_body_is_stored_and_handled(handled: Handled) -> None:
    params = dict(payloads.twilio_text("hi\x00there").params)
    response = handled.bot.handle(twilio_request(params))

    assert response.status == 200
    got = handled.messages()[params["MessageSid"]]
    row = handled.store.get_message("twilio", params["MessageSid"])
    assert row is not None and row.raw is not None and row.text == got.text
    assert got.text in ("hi\x00there", "hi\ufffdthere")


# --- numbers -------------------------------------------------------------------------------
def test_a_status_error_code_beyond_64_bits_is_stored_without_the_code(handled: Handled) -> None:
    error = {"code": BIG, "title": "Huge", "error_data": {"details": "a code no column holds"}}
    status = {"id": "wamid.OUT", "status": "failed", "timestamp": "1749416400", "errors": [error]}
    response = handled.bot.handle(meta_request(meta_body(statuses=[status])))

    assert response.status == 200
    [got] = handled.statuses()
    [record] = handled.store.statuses("meta", "wamid.OUT")
    assert record.status == "failed" and record.error_message == "a code no column holds"
    assert record.raw["errors"][0]["code"] == BIG  # the raw data keeps it
    if not isinstance(handled.store, MemoryStore):
        assert record.error_code is None and got.errors[0].code is None


def test_a_twilio_error_code_beyond_64_bits_is_stored_without_the_code(handled: Handled) -> None:
    params = dict(payloads.twilio_status("SM" + "1" * 32, "undelivered", error_code=63016).params)
    params["ErrorCode"] = str(BIG)
    response = handled.bot.handle(twilio_request(params))

    assert response.status == 200
    [record] = handled.store.statuses("twilio", "SM" + "1" * 32)
    assert record.status == "undelivered" and record.raw["ErrorCode"] == str(BIG)
    if not isinstance(handled.store, MemoryStore):
        assert record.error_code is None


@pytest.mark.parametrize("latitude", [b"1" + b"0" * 400, b"1e400", b"-1e400"])
def test_a_latitude_no_float_holds_is_an_unsupported_message_with_its_raw(
    handled: Handled, latitude: bytes
) -> None:
    location = b'{"latitude":' + latitude + b',"longitude":2.5}'
    body = meta_body(meta_msg("location", {"latitude": "LAT", "longitude": 2.5}, id="wamid.L"))
    body = body.replace(b'{"latitude":"LAT","longitude":2.5}', location)
    response = handled.bot.handle(meta_request(body))

    assert response.status == 200
    got = handled.messages()["wamid.L"]
    assert got.type == "unsupported" and got.location is None
    row = handled.store.get_message("meta", "wamid.L")
    assert row is not None and row.raw is not None and "latitude" in row.raw["location"]


def test_a_twilio_latitude_no_float_holds_is_a_message_without_location(handled: Handled) -> None:
    params = dict(payloads.twilio_location(1.0, 2.0).params)
    params["Latitude"] = "1" + "0" * 400
    handled.bot.handle(twilio_request(params))

    got = handled.messages()[params["MessageSid"]]
    assert got.location is None
    assert handled.store.get_message("twilio", params["MessageSid"]) is not None


def test_a_huge_num_media_is_bounded(handled: Handled) -> None:
    params = dict(payloads.twilio_text("hi").params)
    params["NumMedia"] = str(10**12)  # once looped that many times
    response = handled.bot.handle(twilio_request(params))

    assert response.status == 200
    assert handled.messages()[params["MessageSid"]].media == ()


# --- nesting -------------------------------------------------------------------------------
def test_channel_metadata_of_100000_brackets_is_no_profile_name(handled: Handled) -> None:
    params = dict(payloads.twilio_text("hi", profile_name=None).params)
    params["ChannelMetadata"] = "[" * 100_000
    response = handled.bot.handle(twilio_request(params))

    assert response.status == 200
    got = handled.messages()[params["MessageSid"]]
    assert got.profile_name is None
    row = handled.store.get_message("twilio", params["MessageSid"])
    assert row is not None and row.raw is not None and len(row.raw["ChannelMetadata"]) == 100_000


def test_a_meta_body_nested_past_the_parser_is_a_400(handled: Handled) -> None:
    body = b'{"object":"whatsapp_business_account","entry":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert handled.bot.handle(meta_request(body)).status == 400
    assert handled.events == []


def test_a_deeply_nested_field_is_kept_and_the_message_handled(handled: Handled) -> None:
    body = meta_body(text("wamid.D", "hi") | {"deep": "DEEP"})
    body = body.replace(b'"DEEP"', b"[" * 900 + b"]" * 900)
    response = handled.bot.handle(meta_request(body))

    assert response.status == 200
    assert handled.messages()["wamid.D"].text == "hi"
    assert handled.store.get_message("meta", "wamid.D") is not None


def test_a_deeply_nested_flow_response_is_an_empty_flow_reply(handled: Handled) -> None:
    reply = {"name": "flow", "body": "Sent", "response_json": "[" * 100_000}
    message = meta_msg("interactive", {"type": "nfm_reply", "nfm_reply": reply}, id="wamid.F")
    handled.bot.handle(meta_request(meta_body(message)))

    got = handled.messages()["wamid.F"]
    assert got.flow_reply is not None and got.flow_reply.response == {}


# --- batches -------------------------------------------------------------------------------
def test_one_bad_event_in_a_batch_does_not_stop_the_good_ones(
    handled: Handled, caplog: pytest.LogCaptureFixture
) -> None:
    bad_status = {"id": "wamid.OUT", "status": "failed", "timestamp": "1", "errors": [{"code": BIG}]}
    good_status = {"id": "wamid.OUT2", "status": "delivered", "timestamp": "1749416400"}
    body = meta_body(
        text("wamid.GOOD1", "first"),
        text("wamid.BAD1", "\udc00\x00"),
        meta_msg("location", {"latitude": "LAT", "longitude": 1}, id="wamid.BAD2"),
        text("wamid.GOOD2", "second"),
        statuses=[bad_status, good_status],
    ).replace(b'"LAT"', b"1e400")
    caplog.set_level(logging.WARNING)

    response = handled.bot.handle(meta_request(body))

    assert response.status == 200
    messages = handled.messages()
    assert {"wamid.GOOD1", "wamid.GOOD2", "wamid.BAD1", "wamid.BAD2"} <= set(messages)
    assert messages["wamid.GOOD2"].text == "second"
    assert {s.message_id for s in handled.statuses()} == {"wamid.OUT", "wamid.OUT2"}
    for message_id in ("wamid.GOOD1", "wamid.GOOD2", "wamid.BAD1", "wamid.BAD2"):
        row = handled.store.get_message("meta", message_id)
        assert row is not None and row.raw is not None and row.raw["id"] == message_id
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_redelivered_poisoned_body_is_a_duplicate(handled: Handled) -> None:
    request = meta_request(meta_body(text("wamid.S", "\ud800"), text("wamid.OK", "ok")))
    assert handled.bot.handle(request).status == 200
    assert handled.bot.handle(request).status == 200
    assert sorted(e.id for e in handled.events if isinstance(e, InboundMessage)) == ["wamid.OK", "wamid.S"]


def test_the_async_face_stores_and_handles_a_poisoned_batch(handled: Handled) -> None:
    import asyncio

    body = meta_body(
        text("wamid.A1", "\ud800"),
        text("wamid.A2", "fine"),
        statuses=[{"id": "wamid.OUT", "status": "failed", "timestamp": "1", "errors": [{"code": BIG}]}],
    )

    response = asyncio.run(handled.bot.handle_async(meta_request(body)))

    assert response.status == 200
    assert {"wamid.A1", "wamid.A2"} <= set(handled.messages())
    assert handled.store.statuses("meta", "wamid.OUT")


# --- nothing escapes -----------------------------------------------------------------------
def test_a_reader_that_crashes_answers_400_instead_of_raising(
    handled: Handled, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(request: Any) -> list[Event]:
        raise RuntimeError("a bug in a parser")

    meta = next(r for r in handled.bot.webhook_readers if r.name == "meta")
    monkeypatch.setattr(meta, "parse", crash)

    assert handled.bot.handle(meta_request(meta_body(text("wamid.X", "hi")))).status == 400


def test_inline_handling_that_fails_is_logged_and_the_work_stays_recorded(
    handled: Handled, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(work: Any) -> None:
        raise RuntimeError("the store went away while claiming")

    monkeypatch.setattr(handled.bot, "process_work", broken)

    response = handled.bot.handle(meta_request(meta_body(text("wamid.W", "hi"))))

    assert response.status == 200  # acked: the row says it is still to be handled
    assert "handing out" in caplog.text
    assert handled.store.get_message("meta", "wamid.W") is not None


def test_a_lone_surrogate_in_a_twilio_json_callback_is_stored_and_handled(handled: Handled) -> None:
    from eki_whatsapp import WebhookRequest
    from eki_whatsapp.providers.twilio.webhook import body_sha256, twilio_signature

    from .helpers import TWILIO_TOKEN, WEBHOOK_URL

    params = dict(payloads.twilio_text("hi").params) | {"Body": "a\ud800b"}
    body = json.dumps(params).encode()  # escaped: \ud800
    url = f"{WEBHOOK_URL}?bodySHA256={body_sha256(body)}"
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url)}

    response = handled.bot.handle(WebhookRequest("POST", url, headers, None, body))

    assert response.status == 200
    got = handled.messages()[params["MessageSid"]]
    row = handled.store.get_message("twilio", params["MessageSid"])
    assert row is not None and row.text == got.text and got.text in ("a\ud800b", "a\ufffdb")
