"""Every mapped error code of both providers becomes the right typed error (docs/wire.md §5, §9)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import respx
from pvhelpers import (
    AUTH_TOKEN,
    META_MESSAGES,
    TOKEN,
    TWILIO_MESSAGES,
    USER,
    Sleeps,
    meta,
    meta_fail,
    twilio,
    twilio_fail,
)

from eki_whatsapp.events import ErrorInfo, StatusUpdate
from eki_whatsapp.providers import (
    AuthError,
    InvalidRecipient,
    MediaError,
    MessageRejected,
    ProviderDown,
    ProviderError,
    RateLimited,
    TemplateError,
    Undeliverable,
    WindowClosed,
    classify_error,
)

META_CODES = [
    # code, HTTP status, class, retryable
    (0, 401, AuthError, False),
    (190, 401, AuthError, False),
    (3, 403, AuthError, False),
    (10, 403, AuthError, False),
    (200, 403, AuthError, False),
    (131031, 403, AuthError, False),
    (4, 400, RateLimited, True),
    (80007, 400, RateLimited, True),
    (130429, 429, RateLimited, True),
    (131056, 400, RateLimited, True),
    (131048, 400, RateLimited, False),
    (133016, 400, RateLimited, False),
    (131047, 400, WindowClosed, False),
    (131026, 400, Undeliverable, False),  # an InvalidRecipient another number may reach (issue 18)
    (131021, 400, InvalidRecipient, False),
    (131049, 400, InvalidRecipient, False),
    (131050, 400, InvalidRecipient, False),
    (130472, 400, InvalidRecipient, False),
    (131062, 400, InvalidRecipient, False),
    (132000, 400, TemplateError, False),
    (132001, 404, TemplateError, False),
    (132005, 400, TemplateError, False),
    (132007, 400, TemplateError, False),
    (132012, 400, TemplateError, False),
    (132015, 400, TemplateError, False),
    (132016, 400, TemplateError, False),
    (131052, 400, MediaError, False),
    (131053, 400, MediaError, False),
    (100, 400, MessageRejected, False),
    (131008, 400, MessageRejected, False),
    (131009, 400, MessageRejected, False),
    (131051, 400, MessageRejected, False),
    (368, 403, MessageRejected, False),
    (1, 400, ProviderDown, True),
    (2, 503, ProviderDown, True),
    (131000, 500, ProviderDown, True),
    (131016, 503, ProviderDown, True),
    (131057, 500, ProviderDown, True),
    (133004, 503, ProviderDown, True),
]

TWILIO_CODES = [
    (20003, 401, AuthError, False),
    (63001, 400, AuthError, False),
    (63007, 400, AuthError, False),
    (20429, 429, RateLimited, True),
    (63017, 400, RateLimited, True),
    (63018, 429, RateLimited, True),
    (63038, 400, RateLimited, False),
    (63016, 400, WindowClosed, False),
    (21211, 400, InvalidRecipient, False),
    (21610, 400, InvalidRecipient, False),
    (63003, 400, InvalidRecipient, False),
    (63024, 400, Undeliverable, False),  # Twilio's 131026
    (63032, 400, InvalidRecipient, False),
    (63049, 400, InvalidRecipient, False),
    (63027, 400, TemplateError, False),
    (63028, 400, TemplateError, False),
    (21654, 400, TemplateError, False),
    (21656, 400, TemplateError, False),
    (21617, 400, MessageRejected, False),
    (21658, 400, MessageRejected, False),
    (63005, 400, MessageRejected, False),
    (63013, 400, MessageRejected, False),
    (63021, 400, MessageRejected, False),
    (30500, 500, ProviderDown, True),
    # https://www.twilio.com/docs/api/errors/63012 (WhatsApp internal / service not ready): retried
    # and failed over like Meta's 131000; https://www.twilio.com/docs/api/errors/63019: media.
    (63012, 400, ProviderDown, True),
    (63009, 400, ProviderDown, True),
    (63010, 500, ProviderDown, True),
    (63019, 400, MediaError, False),
    (63034, 400, MediaError, False),
    (63002, 400, AuthError, False),
    (63008, 400, AuthError, False),
    (63014, 400, InvalidRecipient, False),
    (63015, 400, InvalidRecipient, False),
    (63040, 400, TemplateError, False),
    (63041, 400, TemplateError, False),
    (63023, 400, MessageRejected, False),
    (63099, 400, MessageRejected, False),  # an undocumented 63xxx stays a final refusal
]


@pytest.mark.parametrize(("code", "http_status", "cls", "retryable"), META_CODES)
def test_meta_send_error_codes(
    code: int, http_status: int, cls: type[ProviderError], retryable: bool
) -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.post(META_MESSAGES).mock(return_value=meta_fail(code, http_status, "details here"))
        with pytest.raises(ProviderError) as info:
            meta(sleeps).send(USER, "hi")
    error = info.value
    assert type(error) is cls
    assert (error.provider, error.code, error.http_status, error.retryable) == (
        "meta",
        code,
        http_status,
        retryable,
    )
    assert error.raw["code"] == code and error.raw["fbtrace_id"] == "AazXVQ3"
    assert "details here" in error.message
    assert TOKEN not in str(error)
    # Retryable errors are retried up to the attempt bound; others are raised at once.
    expected = 4 if retryable else 1
    assert route.call_count == expected and error.attempts == expected
    assert len(sleeps.waits) == expected - 1


@pytest.mark.parametrize(("code", "http_status", "cls", "retryable"), TWILIO_CODES)
def test_twilio_send_error_codes(
    code: int, http_status: int, cls: type[ProviderError], retryable: bool
) -> None:
    with respx.mock:
        route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_fail(code, http_status))
        with pytest.raises(ProviderError) as info:
            twilio().send("+5511987654321", "hi")
    error = info.value
    assert type(error) is cls
    assert (error.provider, error.code, error.http_status, error.retryable) == (
        "twilio",
        code,
        http_status,
        retryable,
    )
    assert f"docs/errors/{code}" in error.message
    assert AUTH_TOKEN not in str(error)
    assert route.call_count == error.attempts == (4 if retryable else 1)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(500, ProviderDown), (502, ProviderDown), (401, AuthError), (429, RateLimited), (400, MessageRejected)],
)
def test_http_status_without_error_body(status: int, cls: type[ProviderError]) -> None:
    import httpx

    with respx.mock:
        respx.post(META_MESSAGES).mock(return_value=httpx.Response(status, text="<html>oops</html>"))
        with pytest.raises(cls) as info:
            meta().send(USER, "hi")
    assert info.value.code is None and info.value.http_status == status


def test_expired_token_explains_the_system_user_token() -> None:
    with respx.mock:
        respx.post(META_MESSAGES).mock(
            return_value=meta_fail(190, 401, "Error validating access token: Session has expired")
        )
        with pytest.raises(AuthError) as info:
            meta().send(USER, "hi")
    assert "System User" in str(info.value) and "META_WHATSAPP_TOKEN" in str(info.value)


def test_is_transient_makes_an_unknown_code_retryable() -> None:
    import httpx

    body = {"error": {"message": "try again", "code": 999999, "is_transient": True}}
    with respx.mock:
        route = respx.post(META_MESSAGES).mock(return_value=httpx.Response(400, json=body))
        with pytest.raises(MessageRejected) as info:
            meta().send(USER, "hi")
    assert info.value.retryable is True and route.call_count == 4


@pytest.mark.parametrize(
    ("provider", "code", "cls"),
    [
        ("meta", 131047, WindowClosed),
        ("meta", 131026, Undeliverable),
        ("meta", 130429, RateLimited),
        ("meta", 132001, TemplateError),
        ("twilio", 63016, WindowClosed),
        ("twilio", 63024, Undeliverable),
        ("twilio", 63018, RateLimited),
        ("twilio", 30500, ProviderDown),
    ],
)
def test_status_webhook_errors_use_the_same_mapping(
    provider: str, code: int, cls: type[ProviderError]
) -> None:
    status = StatusUpdate(
        provider=provider,  # type: ignore[arg-type]
        message_id="wamid.X",
        status="failed",
        timestamp=datetime.now(timezone.utc),
        raw={},
        errors=(ErrorInfo(code, "Re-engagement message", details="more than 24 hours have passed"),),
    )
    error = status.error
    assert type(error) is cls and error.code == code
    assert type(classify_error(provider, code, "x")) is cls
