"""Retries: backoff with jitter, Retry-After, attempt bound, deadline, timeouts (no real sleeping)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
import respx
from pvhelpers import (
    META_MESSAGES,
    TWILIO_MESSAGES,
    USER,
    Sleeps,
    meta,
    meta_fail,
    meta_ok,
    twilio,
    twilio_fail,
    twilio_ok,
)

from eki_whatsapp.providers import OutcomeUnknown, ProviderDown, RateLimited, RetryPolicy, TemplateError


@respx.mock
def test_retry_then_success_reports_attempts() -> None:
    sleeps = Sleeps()
    route = respx.post(META_MESSAGES).mock(
        side_effect=[meta_fail(130429, 429), meta_fail(131000, 500), meta_ok("wamid.OK")]
    )
    receipt = meta(sleeps).send(USER, "hi")
    assert receipt.message_id == "wamid.OK" and receipt.attempts == 3 and route.call_count == 3
    assert sleeps.waits == [0.5, 1.0]  # exponential: base 0.5 s, doubled (random() == 1.0: no jitter cut)
    bodies = {call.request.content for call in route.calls}
    assert len(bodies) == 1  # the same request each time


def test_jitter_is_between_half_and_all_of_the_backoff() -> None:
    low = RetryPolicy(random=lambda: 0.0)
    high = RetryPolicy(random=lambda: 1.0)
    assert [low.backoff(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert [high.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert RetryPolicy(max_delay=3.0, random=lambda: 1.0).backoff(10) == 3.0


@respx.mock
def test_exhaustion_raises_the_last_error_with_attempts() -> None:
    sleeps = Sleeps()
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_fail(20429, 429))
    provider = twilio(retry=sleeps.policy(max_attempts=3))
    with pytest.raises(RateLimited) as info:
        provider.send("+5511987654321", "hi")
    assert info.value.attempts == 3 and route.call_count == 3 and len(sleeps.waits) == 2


@respx.mock
def test_retry_after_seconds_is_honoured() -> None:
    sleeps = Sleeps()
    respx.post(META_MESSAGES).mock(side_effect=[meta_fail(130429, 429, **{"Retry-After": "7"}), meta_ok()])
    receipt = meta(sleeps).send(USER, "hi")
    assert sleeps.waits == [7.0] and receipt.attempts == 2


@respx.mock
def test_retry_after_http_date_is_honoured() -> None:
    sleeps = Sleeps()
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=12), usegmt=True)
    respx.post(TWILIO_MESSAGES).mock(
        side_effect=[twilio_fail(20429, 429, **{"Retry-After": when}), twilio_ok()]
    )
    twilio(sleeps).send("+5511987654321", "hi")
    assert len(sleeps.waits) == 1 and 9.0 <= sleeps.waits[0] <= 12.0


@respx.mock
def test_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    sleeps = Sleeps()
    route = respx.post(META_MESSAGES).mock(return_value=meta_fail(130429, 429, **{"Retry-After": "120"}))
    with pytest.raises(RateLimited) as info:
        meta(sleeps).send(USER, "hi")
    assert route.call_count == 1 and sleeps.waits == [] and info.value.retry_after == 120.0


@respx.mock
def test_pair_rate_limit_waits_six_seconds() -> None:
    sleeps = Sleeps()
    respx.post(META_MESSAGES).mock(side_effect=[meta_fail(131056), meta_ok()])
    meta(sleeps).send(USER, "hi")
    assert sleeps.waits == [6.0]


@respx.mock
def test_total_deadline_bounds_the_retries() -> None:
    sleeps = Sleeps()
    route = respx.post(META_MESSAGES).mock(return_value=meta_fail(131000, 500))
    provider = meta(retry=sleeps.policy(max_attempts=50, base_delay=1.0, max_delay=100.0, deadline=10.0))
    with pytest.raises(ProviderDown) as info:
        provider.send(USER, "hi")
    assert sleeps.waits == [1.0, 2.0, 4.0]  # the next wait (8 s) would pass the 10 s deadline
    assert route.call_count == info.value.attempts == 4


@respx.mock
def test_non_retryable_error_is_raised_at_once() -> None:
    sleeps = Sleeps()
    route = respx.post(META_MESSAGES).mock(return_value=meta_fail(132001, 404))
    with pytest.raises(TemplateError):
        meta(sleeps).send(USER, "hi")
    assert route.call_count == 1 and sleeps.waits == []


@respx.mock
def test_a_request_that_never_left_is_provider_down_and_retried() -> None:
    sleeps = Sleeps()
    route = respx.post(META_MESSAGES).mock(
        side_effect=[httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"), meta_ok()]
    )
    receipt = meta(sleeps).send(USER, "hi")
    assert receipt.attempts == 3 and route.call_count == 3


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("gone"), httpx.ReadError("reset")]
)
@respx.mock
def test_a_send_whose_answer_was_lost_is_not_retried(failure: httpx.HTTPError) -> None:
    route = respx.post(META_MESSAGES).mock(side_effect=[failure, meta_ok()])
    with pytest.raises(OutcomeUnknown) as info:
        meta(Sleeps()).send(USER, "hi", correlation="k1")
    assert route.call_count == 1 and not info.value.retryable
    assert info.value.correlation == "k1"
    assert route.calls[0].request.content.count(b'"biz_opaque_callback_data":"eki:k1"') == 1


@respx.mock
def test_a_twilio_send_carries_its_key_in_the_status_callback_url() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(side_effect=httpx.ReadTimeout("slow"))
    provider = twilio(status_callback="https://bot.example.com/wa?x=1")
    with pytest.raises(OutcomeUnknown) as info:
        provider.send("+5511987654321", "hi", correlation="k2")
    assert info.value.correlation == "k2" and route.call_count == 1
    assert (
        b"StatusCallback=https%3A%2F%2Fbot.example.com%2Fwa%3Fx%3D1%26eki_ref%3Dk2"
        in route.calls[0].request.content
    )


@respx.mock
def test_timeouts_until_exhaustion() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(side_effect=httpx.ConnectTimeout("no answer"))
    with pytest.raises(ProviderDown, match="timed out") as info:
        twilio().send("+5511987654321", "hi")
    assert info.value.retryable and info.value.attempts == 4 and route.call_count == 4
    assert info.value.raw == {"exception": "ConnectTimeout"}


def test_no_retry_policy() -> None:
    with respx.mock:
        route = respx.post(META_MESSAGES).mock(return_value=meta_fail(131000, 500))
        provider = meta(retry=RetryPolicy.none())
        with pytest.raises(ProviderDown):
            provider.send(USER, "hi")
    assert route.call_count == 1


@pytest.mark.asyncio
async def test_async_retry_uses_the_async_sleeper() -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.post(META_MESSAGES).mock(
            side_effect=[httpx.ConnectTimeout("slow"), meta_fail(130429, 429), meta_ok("wamid.A")]
        )
        provider = meta(sleeps)
        receipt = await provider.send_async(USER, "hi")
        await provider.aclose()
    assert receipt.attempts == 3 and route.call_count == 3 and sleeps.waits == [0.5, 1.0]


@respx.mock
def test_a_failed_part_names_the_parts_already_sent() -> None:
    route = respx.post(META_MESSAGES).mock(side_effect=[meta_ok("wamid.P1"), meta_fail(131047)])
    text = "First part. " * 400 + "\n\n" + "Second part. " * 300
    with pytest.raises(Exception) as info:
        meta().send(USER, text)
    assert route.call_count == 2
    assert info.value.sent_message_ids == ("wamid.P1",)  # type: ignore[attr-defined]
    assert ProviderDown("x", provider="meta").sent_message_ids == ()
    assert info.value.attempts == 2  # type: ignore[attr-defined]


def test_timeouts_are_set_on_the_pooled_clients() -> None:
    provider = meta()
    client = provider._clients.sync()
    assert client.timeout.connect == 5.0 and client.timeout.read == 30.0
    assert provider._clients.sync() is client  # one pooled client per provider
    provider.close()
    custom = meta(timeout=2.5)
    assert custom._clients.sync().timeout.read == 2.5
    custom.close()


def test_both_providers_implement_the_protocol_and_import_lazily() -> None:
    import subprocess
    import sys

    from eki_whatsapp.providers import Provider

    assert isinstance(meta(), Provider)
    assert isinstance(twilio(), Provider)
    code = "import sys, eki_whatsapp; print(sorted(m for m in sys.modules if m.endswith(('.meta', '.twilio', '._http'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # the HTTP providers load on first use


def test_async_face_works_from_successive_event_loops() -> None:
    import asyncio

    with respx.mock:
        route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
        provider = meta()
        asyncio.run(provider.send_async(USER, "first loop"))
        asyncio.run(provider.send_async(USER, "second loop"))

        async def last() -> None:
            await provider.send_async(USER, "third loop")
            await provider.aclose()

        asyncio.run(last())
    assert route.call_count == 3
