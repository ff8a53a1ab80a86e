"""Failover on each error class, the circuit breaker (open / half-open / closed), window errors
at send time, late failures from status webhooks, and the Bot's faces (bot.send, ctx.reply)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot, WebhookRequest
from eki_whatsapp.events import StatusUpdate
from eki_whatsapp.messages import Template, Text
from eki_whatsapp.providers import twilio_webhook
from eki_whatsapp.providers.base import (
    AuthError,
    InvalidRecipient,
    MessageRejected,
    OutcomeUnknown,
    ProviderDown,
    ProviderError,
    RateLimited,
    TemplateError,
    Undeliverable,
    WindowClosed,
    classify_error,
)
from eki_whatsapp.routing import Router

from .conftest import TWILIO_NUMBER, USER, inbound, make_settings
from .fakes import Clock, FakeProvider

DATA = Path(__file__).parent.parent / "data"
PROMO = Template("spring_promo", "en_US", content_sid="HX" + "1" * 32)
FALLBACK = dict(
    whatsapp_fallback_template="please_reply",
    whatsapp_fallback_template_content_sid="HX" + "2" * 32,
)


def down(provider: str = "meta") -> ProviderDown:
    return classify_error(provider, 131016, "Service unavailable", http_status=503)  # type: ignore[return-value]


def rows(store: Any) -> list[Any]:
    return store.list_log(direction="out", limit=50)[::-1]


@pytest.mark.parametrize(
    "error",
    [
        classify_error("meta", 131016, "Service unavailable", http_status=503),
        classify_error("meta", 130429, "Rate limit hit", http_status=429),
        classify_error("meta", 190, "Error validating access token", http_status=401),
    ],
    ids=["ProviderDown", "RateLimited", "AuthError"],
)
def test_failover_on_errors_another_provider_can_avoid(
    make_router: Callable[..., Router],
    store: Any,
    meta: FakeProvider,
    twilio: FakeProvider,
    error: ProviderError,
) -> None:
    assert isinstance(error, (ProviderDown, RateLimited, AuthError))
    meta.fail_next.append(error)
    receipt = make_router().send(USER, PROMO, category="marketing")
    assert receipt.provider == "twilio" and twilio.sent == [(USER, PROMO)]
    first, second = rows(store)
    assert (first.provider, first.status, first.reason, first.error_code) == (
        "meta",
        "failed",
        "cheapest",
        error.code,
    )
    assert first.extra["error"] == type(error).__name__
    assert (second.provider, second.status, second.reason) == (
        "twilio",
        "accepted",
        f"failover:{type(error).__name__}",
    )


@pytest.mark.parametrize(
    "error",
    [
        InvalidRecipient("not a WhatsApp user", provider="meta", code=131026),
        TemplateError("template does not exist", provider="meta", code=132001),
        MessageRejected("invalid parameter", provider="meta", code=100),
    ],
    ids=lambda e: type(e).__name__,
)
def test_no_failover_when_the_message_itself_is_at_fault(
    make_router: Callable[..., Router],
    store: Any,
    meta: FakeProvider,
    twilio: FakeProvider,
    error: ProviderError,
) -> None:
    meta.fail_next.append(error)
    with pytest.raises(type(error)):
        make_router().send(USER, PROMO, category="marketing")
    assert twilio.attempts == 0
    assert [r.status for r in rows(store)] == ["failed"]


def test_when_both_fail_the_last_error_is_raised_and_both_are_logged(
    make_router: Callable[..., Router], store: Any, meta: FakeProvider, twilio: FakeProvider
) -> None:
    meta.fail_next.append(down())
    twilio.fail_next.append(classify_error("twilio", 20429, "Too many requests", http_status=429))
    with pytest.raises(RateLimited):
        make_router().send(USER, PROMO, category="marketing", queue=False)
    assert [(r.provider, r.reason) for r in rows(store)] == [
        ("meta", "cheapest"),
        ("twilio", "failover:ProviderDown"),
    ]


def test_explicit_provider_is_not_failed_over(
    make_router: Callable[..., Router], meta: FakeProvider, twilio: FakeProvider
) -> None:
    meta.fail_next.append(down())
    with pytest.raises(ProviderDown):
        make_router().send(USER, PROMO, provider="meta", queue=False)
    assert twilio.attempts == 0


def test_single_provider_policy_has_nothing_to_fail_over_to(
    make_router: Callable[..., Router], meta: FakeProvider, twilio: FakeProvider
) -> None:
    meta.fail_next.append(down())
    with pytest.raises(ProviderDown):
        make_router(whatsapp_provider="meta").send(USER, PROMO, queue=False)
    assert twilio.attempts == 0


def test_reply_fails_over_with_the_fallback_template_when_the_other_window_is_closed(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    message = inbound("meta", clock.now)
    store.record_inbound(message)
    meta.fail_next.append(down())
    make_router(**FALLBACK).send(USER, "Your order shipped", inbound=message)
    sent = twilio.sent[0][1]
    assert isinstance(sent, Template) and sent.name == "please_reply"
    row = rows(store)[-1]
    # The user wrote only to the Meta number: Twilio's is another number, and the reason says so.
    assert (row.provider, row.reason, row.extra["fallback_template"]) == (
        "twilio",
        "failover:ProviderDown:other-number",
        True,
    )


def test_reply_without_fallback_raises_the_original_error_rather_than_send_blindly(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    message = inbound("meta", clock.now)
    store.record_inbound(message)
    meta.fail_next.append(down())
    with pytest.raises(ProviderDown):
        make_router().send(USER, "Your order shipped", inbound=message, queue=False)
    assert twilio.attempts == 0


def test_reply_fails_over_as_free_form_when_the_other_window_is_open_too(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    store.record_inbound(inbound("twilio", clock.now, msg_id="t"))
    message = inbound("meta", clock.now, msg_id="m")
    store.record_inbound(message)
    meta.fail_next.append(down())
    make_router().send(USER, "Your order shipped", inbound=message)
    assert twilio.sent == [(USER, Text("Your order shipped"))]


def test_circuit_breaker_opens_skips_then_probes(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    outage = {"on": True}
    meta.down = lambda to, msg: down() if outage["on"] else None
    router = make_router(whatsapp_breaker_threshold=3, whatsapp_breaker_cooldown_seconds=120)
    for i in range(3):
        assert router.send(f"1650555{i:04d}", PROMO, category="marketing").provider == "twilio"
    assert meta.attempts == 3
    assert router.breakers["meta"].state(clock.now) == "open"

    # Open: Meta is not even tried; a reply that came in on Meta goes out on Twilio.
    for i in range(5):
        router.send(f"1650666{i:04d}", PROMO, category="marketing")
    assert meta.attempts == 3
    assert rows(store)[-1].reason == "cheapest"
    message = inbound("meta", clock.now)
    store.record_inbound(message)
    store.record_inbound(inbound("twilio", clock.now, msg_id="t"))
    router.send(USER, "ok", inbound=message)
    assert (rows(store)[-1].provider, rows(store)[-1].reason) == ("twilio", "failover:circuit-open")

    # Half-open after the cool-down: one probe; it fails -> open again, message failed over.
    clock.advance(seconds=121)
    assert router.breakers["meta"].state(clock.now) == "half-open"
    assert router.send("16505559999", PROMO, category="marketing").provider == "twilio"
    assert meta.attempts == 4
    assert router.breakers["meta"].state(clock.now) == "open"
    router.send("16505559998", PROMO, category="marketing")
    assert meta.attempts == 4

    # Meta recovers: the next probe succeeds and closes the breaker.
    outage["on"] = False
    clock.advance(seconds=121)
    assert router.send("16505559997", PROMO, category="marketing").provider == "meta"
    assert router.breakers["meta"].state(clock.now) == "closed"
    assert router.send("16505559996", PROMO, category="marketing").provider == "meta"


def test_breaker_ignores_errors_of_the_message_itself(
    make_router: Callable[..., Router], clock: Clock, meta: FakeProvider
) -> None:
    router = make_router(whatsapp_breaker_threshold=2)
    for _ in range(4):
        meta.fail_next.append(InvalidRecipient("bad number", provider="meta", code=131026))
        with pytest.raises(InvalidRecipient):
            router.send(USER, PROMO, category="marketing")
    assert router.breakers["meta"].state(clock.now) == "closed"


def test_window_closed_at_send_time_sends_the_fallback_on_the_same_provider(
    make_router: Callable[..., Router], store: Any, clock: Clock, twilio: FakeProvider
) -> None:
    message = inbound("twilio", clock.now)
    store.record_inbound(message)
    twilio.fail_next.append(classify_error("twilio", 63016, "Outside the allowed window", http_status=400))
    receipt = make_router(**FALLBACK).send(USER, "hello", inbound=message)
    assert receipt.provider == "twilio" and twilio.sent[0][1].name == "please_reply"
    failed, ok = rows(store)
    assert (failed.reason, failed.error_code) == ("reply-channel", 63016)
    assert (ok.reason, ok.extra["choice"]) == ("fallback-template", "reply-channel")


def test_window_closed_at_send_time_without_fallback_raises(
    make_router: Callable[..., Router], store: Any, clock: Clock, twilio: FakeProvider
) -> None:
    message = inbound("twilio", clock.now)
    store.record_inbound(message)
    twilio.fail_next.append(classify_error("twilio", 63016, "Outside the allowed window", http_status=400))
    with pytest.raises(WindowClosed):
        make_router().send(USER, "hello", inbound=message)


# --- late failures (status webhooks) -------------------------------------------------------------
def meta_failed_status(wamid: str, code: int, details: str) -> bytes:
    body = json.loads((DATA / "meta_status_3_6.json").read_text())
    status = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(id=wamid, status="failed")
    status.pop("pricing")
    status["errors"] = [
        {
            "code": code,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {"details": details},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }
    ]
    return json.dumps(body).encode()


def meta_request(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        "POST", "https://bot.example.com/webhook", {"Content-Type": "application/json"}, None, body
    )


def test_late_131047_through_the_webhook_sends_the_fallback_once(
    store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    settings = make_settings(**FALLBACK)
    router = Router({"meta": meta, "twilio": twilio}, store, settings, clock=clock)
    store.record_inbound(inbound("meta", clock.now))
    bot = Bot(settings, store=store, providers={"meta": meta, "twilio": twilio}, inline=True, router=router)
    try:
        seen: list[str] = []
        bot.on_status(lambda status, ctx: seen.append(status.status))
        receipt = bot.send(USER, "Your order shipped")
        assert receipt.provider == "meta"
        body = meta_failed_status(receipt.message_id, 131047, "more than 24 hours have passed")
        assert bot.handle(meta_request(body)).status == 200
        assert seen == ["failed"]
        assert [m.name for _, m in meta.sent[1:]] == ["please_reply"]
        row = rows(store)[-1]
        assert (row.provider, row.reason, row.extra["replaces"]) == (
            "meta",
            "fallback-template",
            receipt.message_id,
        )
        assert store.get_message("meta", receipt.message_id).status == "failed"
        # Meta delivers the same status again: nothing more is sent.
        bot.handle(meta_request(body))
        router.on_status(_status_of(body))
        assert len(meta.sent) == 2
        report = router.costs.report("2026-09")
        assert report.line("meta", "service").failed == 1
    finally:
        bot.close()


def _status_of(body: bytes) -> StatusUpdate:
    from eki_whatsapp.providers import meta_webhook

    (status,) = meta_webhook.parse_body(json.loads(body))
    assert isinstance(status, StatusUpdate)
    return status


def test_late_63016_from_twilio_sends_the_fallback_on_twilio(
    make_router: Callable[..., Router], store: Any, clock: Clock, twilio: FakeProvider
) -> None:
    store.record_inbound(inbound("twilio", clock.now))
    router = make_router(**FALLBACK)
    receipt = router.send(USER, "hello")
    assert receipt.provider == "twilio"
    (status,) = twilio_webhook.parse_params(
        {
            "MessageSid": receipt.message_id,
            "SmsSid": receipt.message_id,
            "AccountSid": "AC0123456789abcdef0123456789abcdef",
            "MessageStatus": "failed",
            "ErrorCode": "63016",
            "ChannelStatusMessage": "Failed to send freeform message because you are outside the allowed window.",
            "From": "whatsapp:+" + TWILIO_NUMBER,
            "To": "whatsapp:+" + USER,
            "ChannelPrefix": "whatsapp",
        }
    )
    assert isinstance(status, StatusUpdate)
    store.record_status(status)
    router.on_status(status)
    assert twilio.sent[-1] == (USER, router.fallback_for(USER, None))
    assert rows(store)[-1].reason == "fallback-template"


def test_late_window_failure_without_fallback_is_logged_not_resent(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, caplog: Any
) -> None:
    store.record_inbound(inbound("meta", clock.now))
    router = make_router()
    receipt = router.send(USER, "hello")
    router.on_status(_status_of(meta_failed_status(receipt.message_id, 131047, "24 hours")))
    assert len(meta.sent) == 1
    assert "WHATSAPP_FALLBACK_TEMPLATE" in caplog.text


def test_late_provider_failure_fails_a_text_over_to_the_other_provider(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    store.record_inbound(inbound("meta", clock.now, msg_id="m"))
    store.record_inbound(inbound("twilio", clock.now, msg_id="t"))
    router = make_router()
    receipt = router.send(USER, "hello")
    assert receipt.provider == "meta"
    router.on_status(_status_of(meta_failed_status(receipt.message_id, 131000, "Something went wrong")))
    assert twilio.sent == [(USER, Text("hello"))]
    row = rows(store)[-1]
    assert (row.reason, row.extra["replaces"], row.extra["late"]) == (
        "failover:ProviderDown",
        receipt.message_id,
        True,
    )


def test_late_failure_of_a_template_is_not_answered_with_the_fallback(
    make_router: Callable[..., Router], store: Any, meta: FakeProvider
) -> None:
    router = make_router(**FALLBACK)
    receipt = router.send(USER, PROMO, category="marketing")
    router.on_status(_status_of(meta_failed_status(receipt.message_id, 131047, "24 hours")))
    assert len(meta.sent) == 1


# --- async face and the Bot ----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_async_face_fails_over_like_the_sync_one(
    make_router: Callable[..., Router], store: Any, meta: FakeProvider, twilio: FakeProvider
) -> None:
    meta.fail_next.append(down())
    receipt = await make_router().send_async(USER, PROMO, category="marketing")
    assert receipt.provider == "twilio"
    assert rows(store)[-1].reason == "failover:ProviderDown"


def test_ctx_reply_goes_through_the_router(store: Any, meta: FakeProvider, twilio: FakeProvider) -> None:
    from datetime import datetime, timezone

    from tests.core.helpers import twilio_request

    settings = make_settings()
    clock = Clock(datetime.now(timezone.utc))  # Twilio inbound messages carry the receipt time
    router = Router({"meta": meta, "twilio": twilio}, store, settings, clock=clock)
    bot = Bot(settings, store=store, providers={"meta": meta, "twilio": twilio}, inline=True, router=router)
    try:

        @bot.on_message
        def echo(message: Any, ctx: Any) -> None:
            ctx.reply(f"echo: {message.text}")

        form = {
            "MessageSid": "SM" + "a" * 32,
            "SmsMessageSid": "SM" + "a" * 32,
            "AccountSid": "AC0123456789abcdef0123456789abcdef",
            "From": "whatsapp:+" + USER,
            "To": "whatsapp:+" + TWILIO_NUMBER,
            "Body": "hi there",
            "NumMedia": "0",
            "WaId": USER,
        }
        assert bot.handle(twilio_request(form)).status in (200, 204)
        assert twilio.sent == [(USER, Text("echo: hi there"))]
        assert rows(store)[-1].reason == "reply-channel"
        bot.send(USER, "and one more")  # business-initiated: the Twilio window is open
        assert rows(store)[-1].reason == "window-open"
        assert bot.costs is router.costs
    finally:
        bot.close()


def test_open_breaker_does_not_strand_a_reply_that_only_its_channel_can_carry(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    router = make_router(whatsapp_breaker_threshold=1)
    meta.fail_next.append(down())
    router.send(USER, PROMO, category="marketing")  # fails over; Meta's breaker opens
    assert router.breakers["meta"].state(clock.now) == "open"
    message = inbound("meta", clock.now)
    store.record_inbound(message)
    # No Twilio window and no fallback template: Meta is the only way to deliver a free-form
    # reply. By default it waits in the outbox at once; a caller that will not wait gets a try.
    queued = router.send(USER, "ok", inbound=message)
    assert (queued.provider, queued.status) == ("meta", "queued") and meta.attempts == 1
    receipt = router.send(USER, "ok", inbound=message, queue=False)
    assert receipt.provider == "meta" and rows(store)[-1].reason == "reply-channel"
    assert router.breakers["meta"].state(clock.now) == "closed"


# --- issue 18: reachability, undeliverable, timeouts, the window margin -----------------------------
def test_a_late_131026_fails_a_template_over_to_the_users_other_number(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    store.record_inbound(inbound("meta", clock.now - timedelta(days=3), msg_id="m"))
    store.record_inbound(inbound("twilio", clock.now - timedelta(days=3), msg_id="t"))
    router = make_router()
    receipt = router.send(USER, PROMO, category="marketing")
    assert receipt.provider == "meta"
    router.on_status(_status_of(meta_failed_status(receipt.message_id, 131026, "Message undeliverable")))
    assert twilio.sent == [(USER, PROMO)]  # the same template, rebuilt from its log row
    row = rows(store)[-1]
    assert (row.provider, row.reason, row.extra["late"]) == ("twilio", "failover:Undeliverable", True)
    router.on_status(_status_of(meta_failed_status(receipt.message_id, 131026, "Message undeliverable")))
    assert len(twilio.sent) == 1  # once per message
    assert router.breakers["meta"].available(clock.now)  # the provider works; the user is not reached there


def test_an_undeliverable_message_goes_to_another_number_only_as_a_failover_the_settings_allow(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    store.record_inbound(inbound("meta", clock.now - timedelta(days=3), msg_id="m"))  # Meta only
    meta.fail_next.append(Undeliverable("undeliverable", provider="meta", code=131026))
    router = make_router()
    assert router.send(USER, PROMO, category="marketing").provider == "twilio"
    assert rows(store)[-1].reason == "failover:Undeliverable:other-number"
    meta.fail_next.append(Undeliverable("undeliverable", provider="meta", code=131026))
    strict = make_router(whatsapp_failover_other_number=False)
    with pytest.raises(Undeliverable):
        strict.send(USER, PROMO, category="marketing")
    assert len(twilio.sent) == 1


def test_a_send_that_timed_out_after_the_request_left_is_in_the_ledger(
    make_router: Callable[..., Router], store: Any, clock: Clock, twilio: FakeProvider
) -> None:
    store.record_inbound(inbound("twilio", clock.now - timedelta(days=3)))
    twilio.fail_next.append(OutcomeUnknown("no answer (ReadTimeout)", provider="twilio"))
    twilio.fail_next.append(OutcomeUnknown("no answer (ReadTimeout)", provider="twilio"))
    router = make_router()
    receipt = router.send(USER, PROMO, category="marketing")
    assert receipt.status == "unknown"  # kept in the outbox until a status says what happened
    with pytest.raises(OutcomeUnknown):  # also when the caller will not wait
        router.send(USER, PROMO, category="marketing", queue=False, provider="twilio")
    assert twilio.attempts == 2  # never retried, never failed over
    line = router.costs.report("2026-09").line("twilio", "marketing")
    assert (line.messages, line.timed_out, line.known_amount) == (2, 2, Decimal("0.0600"))


def test_the_window_margin_decides_what_may_be_sent_not_what_it_costs(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    # 30 s before the 24 hours end: inside the margin (60 s), so a free-form message is not sent
    # as free-form, but a utility template is still free on the provider's own clock.
    store.record_inbound(inbound("meta", clock.now - timedelta(hours=24) + timedelta(seconds=30)))
    router = make_router(**FALLBACK)
    assert router.decide(USER, "hello").fallback
    receipt = router.send(USER, PROMO, category="utility")
    assert receipt.provider == "meta"
    entry = next(e for e in store.ledger(month="2026-09") if e.message_id == receipt.message_id)
    assert (entry.amount, entry.note) == (Decimal("0"), "free-in-window")


def test_undeliverable_is_classified_inside_each_provider_package() -> None:
    assert isinstance(classify_error("meta", 131026, "Message undeliverable", http_status=400), Undeliverable)
    assert isinstance(
        classify_error("twilio", 63024, "Invalid message recipient", http_status=400), Undeliverable
    )
    assert isinstance(classify_error("meta", 131026, "x", http_status=400), InvalidRecipient)  # still one
