"""Webhook pipeline behaviour: bad input, dedup, logging before the ack, handlers."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from eki_whatsapp import (
    Bot,
    InboundMessage,
    MemoryStore,
    SQLiteStore,
    StatusUpdate,
    StoreError,
    WebhookRequest,
)

from .helpers import (
    APP_SECRET,
    T1_PARAMS,
    data,
    make_settings,
    meta_envelope,
    meta_msg,
    meta_request,
    meta_value,
)

URL = "https://bot.example.com/webhook/whatsapp/"


def post(bot: Bot, body: bytes, ctype: str | None = "application/json", **headers: str) -> Any:
    hdrs = dict(headers)
    if ctype is not None:
        hdrs["Content-Type"] = ctype
    return bot.handle(WebhookRequest("POST", URL, hdrs, None, body))


def status_body(message_id: str, status: str, ts: str = "1749416390", **extra: Any) -> dict[str, Any]:
    st = {"id": message_id, "status": status, "timestamp": ts, "recipient_id": "5511987654321", **extra}
    return meta_envelope(meta_value(statuses=[st]))


# --- bad input: clear 4xx, nothing processed ---------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"\xff\xfe\x00", 400, "malformed JSON"),
        (b"[1, 2]", 400, "not an object"),
        (b'{"object": "page", "entry": []}', 400, "not a WhatsApp Business Account"),
        (b'{"object": "whatsapp_business_account"}', 400, "entry"),
        (b"[" * 100_000, 400, "malformed JSON"),
    ],
)
def test_bad_meta_bodies_get_a_clear_4xx(store: Any, body: bytes, status: int, reason: str) -> None:
    bot = Bot(make_settings(meta_app_secret=None), store=store, providers={}, inline=True)
    response = post(bot, body)
    assert response.status == status
    assert reason in response.body.decode()
    assert store.list_log() == []


def test_wrong_content_type_is_415(bot: Bot) -> None:
    response = post(bot, b"<xml/>", "text/xml")
    assert response.status == 415
    assert b"content type" in response.body


def test_missing_content_type_is_415_unless_signed(bot: Bot) -> None:
    assert post(bot, data("meta_m1.json"), None).status == 415
    signed = meta_request(data("meta_m1.json"))
    assert (
        post(
            bot,
            data("meta_m1.json"),
            None,
            **{"X-Hub-Signature-256": signed.header("x-hub-signature-256") or ""},
        ).status
        == 200
    )


def test_oversize_body_is_413_before_anything_else(store: Any) -> None:
    bot = Bot(make_settings(whatsapp_max_body_bytes=100), store=store, providers={}, inline=True)
    assert post(bot, data("meta_m1.json")).status == 413


def test_other_methods_are_405(bot: Bot) -> None:
    response = bot.handle(WebhookRequest("PUT", URL, {}, None, b""))
    assert response.status == 405
    assert response.headers.get("Allow") == "GET, POST"


def test_twilio_form_without_message_sid_is_400(bot: Bot) -> None:
    from .helpers import twilio_request

    response = bot.handle(twilio_request({"Body": "hi", "From": "whatsapp:+1"}))
    assert response.status == 400
    assert b"MessageSid" in response.body


def test_twilio_post_when_twilio_is_not_configured_is_refused(store: Any) -> None:
    from .helpers import twilio_request

    bot = Bot(
        make_settings(whatsapp_provider="meta", twilio_auth_token=None),
        store=store,
        providers={},
        inline=True,
    )
    response = bot.handle(twilio_request(T1_PARAMS))
    assert response.status == 403
    assert b"TWILIO_AUTH_TOKEN" in response.body
    assert store.list_log() == []


def test_unsigned_meta_is_accepted_only_without_app_secret(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bot = Bot(make_settings(meta_app_secret=None), store=store, providers={}, inline=True)
    assert post(bot, data("meta_m1.json")).status == 200
    assert len(store.list_log()) == 1


def test_secrets_never_appear_in_logs_or_bodies(store: Any, caplog: pytest.LogCaptureFixture) -> None:
    from .helpers import twilio_request

    token = "tw-secret-token-4242"
    bot = Bot(make_settings(twilio_auth_token=token), store=store, providers={}, inline=True)
    with caplog.at_level(logging.DEBUG):
        responses = [
            post(bot, data("meta_m1.json"), **{"X-Hub-Signature-256": "sha256=" + "0" * 64}),
            bot.handle(twilio_request(T1_PARAMS, token="x" * 32)),
            bot.handle(
                WebhookRequest("GET", URL + "?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
            ),
        ]
    text = caplog.text + "".join(r.body.decode() for r in responses) + repr(bot.settings) + str(bot.settings)
    for secret in (APP_SECRET, token, "EAAG-test-token", "my-verify-token"):
        assert secret not in text


# --- logging and statuses ------------------------------------------------------------------------
def test_message_is_logged_before_the_ack_even_when_handlers_run_later(store: Any) -> None:
    release = threading.Event()
    bot = Bot(make_settings(), store=store, providers={}, inline=False)
    bot.on_message(lambda m: release.wait(5))
    response = post(
        bot,
        data("meta_m1.json"),
        **{"X-Hub-Signature-256": meta_request(data("meta_m1.json")).header("x-hub-signature-256") or ""},
    )
    assert response.status == 200
    [row] = store.list_log()  # logged although the handler has not finished
    assert row.direction == "in" and row.status == "received"
    release.set()
    assert bot.drain(5)
    bot.close()


def test_status_updates_the_outbound_row_and_never_downgrades(bot: Bot) -> None:
    from eki_whatsapp.store import LogEntry

    bot.store.log_outbound(
        LogEntry(direction="out", provider="meta", type="text", message_id="wamid.OUT", status="accepted")
    )
    for status, ts in (("sent", "1"), ("read", "3"), ("delivered", "2")):
        assert bot.handle(meta_request(status_body("wamid.OUT", status, ts))).status == 200
    row = bot.store.get_message("meta", "wamid.OUT")
    assert row is not None and row.status == "read"
    assert [s.status for s in bot.store.statuses("meta", "wamid.OUT")] == ["sent", "delivered", "read"]


def test_failed_status_records_error_on_the_row(bot: Bot) -> None:
    from eki_whatsapp.store import LogEntry

    bot.store.log_outbound(
        LogEntry(direction="out", provider="meta", type="text", message_id="wamid.F", status="accepted")
    )
    errors = [
        {"code": 131047, "title": "Re-engagement message", "error_data": {"details": "24 hours passed"}}
    ]
    bot.handle(meta_request(status_body("wamid.F", "failed", errors=errors)))
    row = bot.store.get_message("meta", "wamid.F")
    assert row is not None and (row.status, row.error_code, row.error_message) == (
        "failed",
        131047,
        "24 hours passed",
    )


def test_status_before_its_outbound_row_is_applied_when_the_row_is_written(bot: Bot) -> None:
    from eki_whatsapp.store import LogEntry

    bot.handle(meta_request(status_body("wamid.FAST", "delivered")))
    bot.store.log_outbound(
        LogEntry(direction="out", provider="meta", type="text", message_id="wamid.FAST", status="accepted")
    )
    row = bot.store.get_message("meta", "wamid.FAST")
    assert row is not None and row.status == "delivered"


def test_duplicate_status_runs_handlers_once(bot: Bot) -> None:
    seen: list[StatusUpdate] = []
    bot.on_status(seen.append)
    for _ in range(3):
        bot.handle(meta_request(status_body("wamid.D", "delivered")))
    assert len(seen) == 1


def test_change_events_are_logged_and_dispatched(bot: Bot) -> None:
    seen = []
    bot.on_change(seen.append, fields=["account_update"])
    bot.handle(meta_request(meta_envelope({"event": "ACCOUNT_VIOLATION"}, field="account_update")))
    assert [e.field for e in seen] == ["account_update"]
    [row] = bot.store.list_log()
    assert row.type == "event:account_update"


def test_store_failure_answers_503_so_the_provider_retries() -> None:
    class BrokenStore(MemoryStore):
        def record_inbound(self, message: InboundMessage) -> bool:
            raise StoreError("disk full")

    bot = Bot(make_settings(), store=BrokenStore(), providers={}, inline=True)
    assert bot.handle(meta_request(data("meta_m1.json"))).status == 503


# --- dedup -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_concurrent_duplicate_deliveries_are_processed_once(kind: str, tmp_path: Any) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "dedup.sqlite3")
    bot = Bot(make_settings(), store=store, providers={}, inline=True)
    calls: list[str] = []
    lock = threading.Lock()

    def handler(message: InboundMessage) -> None:
        with lock:
            calls.append(message.id)

    bot.on_message(handler)
    request = meta_request(data("meta_m1.json"))
    barrier = threading.Barrier(16)

    def deliver(_: int) -> int:
        barrier.wait()
        return bot.handle(request).status

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(deliver, range(16)))
    assert statuses == [200] * 16
    assert len(calls) == 1
    assert len(store.list_log()) == 1
    bot.close()


def test_same_id_on_different_providers_is_not_a_duplicate(bot: Bot) -> None:
    from .helpers import twilio_request

    body = meta_envelope(
        meta_value([meta_msg("text", {"body": "x"}, id="SM0123456789abcdef0123456789abcdef")])
    )
    bot.handle(meta_request(body))
    bot.handle(twilio_request(T1_PARAMS))
    assert {r.provider for r in bot.store.list_log()} == {"meta", "twilio"}


# --- handlers ---------------------------------------------------------------------------------------
def test_failing_handler_is_isolated_and_logged(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    @bot.on_message
    def broken(message: InboundMessage) -> None:
        raise RuntimeError("boom")

    @bot.on_message
    def fine(message: InboundMessage, ctx: Any) -> None:
        seen.append(message.id)

    body = meta_envelope(meta_value([meta_msg("text", {"body": str(i)}, id=f"wamid.{i}") for i in range(3)]))
    with caplog.at_level(logging.ERROR, logger="eki_whatsapp"):
        assert bot.handle(meta_request(body)).status == 200
    assert seen == ["wamid.0", "wamid.1", "wamid.2"]
    assert "broken" in caplog.text and "wamid.1" in caplog.text and "boom" in caplog.text


def test_handler_filters_by_type_and_provider(bot: Bot) -> None:
    from .helpers import twilio_request

    texts: list[str] = []
    bot.on_message(lambda m: texts.append(m.provider), types=["text"], provider="twilio")
    bot.handle(meta_request(data("meta_m1.json")))
    bot.handle(twilio_request(T1_PARAMS))
    assert texts == ["twilio"]


def test_async_handler_under_sync_face(bot: Bot) -> None:
    seen = []

    @bot.on_message
    async def handler(message: InboundMessage, ctx: Any) -> None:
        await asyncio.sleep(0)
        seen.append((message.text, ctx.user, ctx.provider))

    bot.handle(meta_request(data("meta_m1.json")))
    assert seen == [("Does it come in another color?", "16505551234", "meta")]


def test_callable_object_handler_with_async_call(bot: Bot) -> None:
    class Agentish:
        def __init__(self) -> None:
            self.seen: list[str] = []

        async def __call__(self, message: InboundMessage, ctx: Any) -> None:
            self.seen.append(message.id)

    agent = Agentish()
    bot.on_message(agent)
    bot.handle(meta_request(data("meta_m1.json")))
    assert len(agent.seen) == 1


@pytest.mark.asyncio
async def test_async_face_inline_and_background(store: Any) -> None:
    seen: list[str] = []
    bot = Bot(make_settings(), store=store, providers={}, inline=False)

    @bot.on_message
    async def on_async(message: InboundMessage) -> None:
        seen.append("async:" + message.id)

    @bot.on_message
    def on_sync(message: InboundMessage) -> None:
        seen.append("sync:" + message.id)

    response = await bot.handle_async(meta_request(data("meta_m1.json")))
    assert response.status == 200
    await bot.drain_async()
    assert len(seen) == 2 and seen[0].startswith("async:") and seen[1].startswith("sync:")
    bot.inline = True
    response = await bot.handle_async(meta_request(data("meta_m2.json")))
    assert response.status == 200 and len(seen) == 4
    bot.close()


def test_background_handlers_run_after_the_response(store: Any) -> None:
    started = threading.Event()
    bot = Bot(make_settings(), store=store, providers={}, inline=False)
    bot.on_message(lambda m: started.set())
    assert bot.handle(meta_request(data("meta_m1.json"))).status == 200
    assert bot.drain(5)
    assert started.is_set()
    bot.close()


def test_ctx_reply_needs_a_message(bot: Bot) -> None:
    errors: list[Exception] = []

    @bot.on_status
    def on_status(status: StatusUpdate, ctx: Any) -> None:
        try:
            ctx.reply("hi")
        except TypeError as exc:
            errors.append(exc)

    bot.handle(meta_request(status_body("wamid.S", "sent")))
    assert len(errors) == 1 and "inbound message" in str(errors[0])
