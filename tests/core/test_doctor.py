"""doctor: every finding explained, against mocked Graph and Twilio APIs."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
import respx

from eki_whatsapp.doctor import Check, diagnose, render

from .helpers import make_settings

GRAPH = "https://graph.facebook.com/v26.0"
TWILIO = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef.json"
HOOK = "https://bot.example.com/webhook/whatsapp/"


def by_title(checks: list[Check]) -> dict[str, Check]:
    return {c.title: c for c in checks}


def settings(**kw: Any) -> Any:
    base: dict[str, Any] = {"meta_business_account_id": "102290129340398", "whatsapp_webhook_url": HOOK}
    base.update(kw)
    return make_settings(**base)


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> httpx.Response:
    err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode:
        err["error_subcode"] = subcode
    return httpx.Response(status, json={"error": err})


def mock_all_ok(router: respx.MockRouter) -> None:
    router.get(f"{GRAPH}/106540352242922").respond(
        json={"display_phone_number": "+1 555-078-3881", "verified_name": "Eki", "code_verification_status": "VERIFIED",
              "quality_rating": "GREEN", "platform_type": "CLOUD_API", "id": "106540352242922"}
    )  # fmt: skip
    router.get(f"{GRAPH}/102290129340398/subscribed_apps").respond(
        json={"data": [{"whatsapp_business_api_data": {"id": "1", "name": "Eki app"}}]}
    )
    router.get(TWILIO).respond(json={"friendly_name": "Eki", "status": "active"})


def test_offline_checks_flag_missing_and_unsafe_settings() -> None:
    s = make_settings(meta_verify_token=None, meta_app_secret=None, twilio_auth_token=None,
                      twilio_whatsapp_number="+14155238886", whatsapp_webhook_url="http://bot.example.com/hook")  # fmt: skip
    checks = by_title(diagnose(s))
    assert (
        checks["twilio credentials"].status == "fail"
        and "TWILIO_AUTH_TOKEN" in checks["twilio credentials"].detail
    )
    assert checks["meta credentials"].status == "ok"
    assert checks["META_VERIFY_TOKEN"].status == "fail"
    assert checks["META_APP_SECRET"].status == "warn"
    assert (
        checks["TWILIO_WHATSAPP_NUMBER"].status == "warn"
        and "join" in checks["TWILIO_WHATSAPP_NUMBER"].detail
    )
    assert (
        checks["WHATSAPP_WEBHOOK_URL"].status == "fail" and "HTTPS" in checks["WHATSAPP_WEBHOOK_URL"].detail
    )
    text = render(list(checks.values()))
    assert "✖ META_VERIFY_TOKEN" in text and "→" in text


@respx.mock
def test_all_ok_online() -> None:
    mock_all_ok(respx.mock)
    respx.get(url__startswith=HOOK).mock(
        side_effect=lambda r: httpx.Response(200, text=r.url.params["hub.challenge"])
    )
    checks = by_title(diagnose(settings(), online=True, check_webhook=True))
    assert checks["Meta phone number"].status == "ok" and "Eki" in checks["Meta phone number"].detail
    assert checks["Meta webhook subscription"].status == "ok"
    assert checks["Twilio account"].status == "ok"
    assert checks["webhook verification"].status == "ok"
    assert not [c for c in checks.values() if c.status == "fail"]
    graph_call = respx.calls[0].request
    assert graph_call.headers["Authorization"] == "Bearer EAAG-test-token"


@respx.mock
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (graph_error(401, 190, "Error validating access token: Session has expired", 463), "expired"),
        (graph_error(401, 190, "Invalid OAuth access token."), "refused"),
        (
            graph_error(400, 100, "Unsupported get request. Object with ID '1' does not exist"),
            "does not know this id",
        ),
        (graph_error(403, 10, "Application does not have permission"), "permission"),
    ],
)
def test_meta_token_and_id_failures_are_explained(response: httpx.Response, expected: str) -> None:
    mock_all_ok(respx.mock)
    respx.get(f"{GRAPH}/106540352242922").mock(return_value=response)
    check = by_title(diagnose(settings(), online=True, check_webhook=False))["Meta phone number"]
    assert check.status == "fail" and expected in check.detail
    if expected == "expired":
        assert "System User" in check.fix


@respx.mock
def test_unverified_and_unregistered_numbers() -> None:
    mock_all_ok(respx.mock)
    route = respx.get(f"{GRAPH}/106540352242922")
    route.respond(json={"display_phone_number": "+1", "code_verification_status": "NOT_VERIFIED"})
    check = by_title(diagnose(settings(), online=True, check_webhook=False))["Meta phone number"]
    assert check.status == "fail" and "not verified" in check.detail
    route.respond(
        json={
            "display_phone_number": "+1",
            "code_verification_status": "VERIFIED",
            "platform_type": "ON_PREMISE",
        }
    )
    check = by_title(diagnose(settings(), online=True, check_webhook=False))["Meta phone number"]
    assert check.status == "fail" and "register" in check.fix


@respx.mock
def test_missing_webhook_subscription() -> None:
    mock_all_ok(respx.mock)
    respx.get(f"{GRAPH}/102290129340398/subscribed_apps").respond(json={"data": []})
    check = by_title(diagnose(settings(), online=True, check_webhook=False))["Meta webhook subscription"]
    assert check.status == "fail" and "subscribed_apps" in check.fix and "messages" in check.fix


@respx.mock
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(401, json={"code": 20003, "message": "Authenticate", "status": 401}), "refused"),
        (httpx.Response(404, json={"code": 20404, "message": "not found", "status": 404}), "does not exist"),
        (httpx.Response(200, json={"status": "suspended"}), "suspended"),
    ],
)
def test_twilio_failures(response: httpx.Response, expected: str) -> None:
    mock_all_ok(respx.mock)
    respx.get(TWILIO).mock(return_value=response)
    check = by_title(diagnose(settings(), online=True, check_webhook=False))["Twilio account"]
    assert check.status == "fail" and expected in check.detail


@respx.mock
def test_twilio_uses_basic_auth() -> None:
    mock_all_ok(respx.mock)
    diagnose(settings(whatsapp_provider="twilio"), online=True, check_webhook=False)
    [call] = respx.calls
    assert call.request.headers["Authorization"].startswith("Basic ")
    assert str(call.request.url) == TWILIO


@respx.mock
def test_verify_token_mismatch_and_unreachable_webhook() -> None:
    respx.get(url__startswith=HOOK).respond(403, text="verification refused")
    check = by_title(diagnose(settings(), check_webhook=True))["webhook verification"]
    assert check.status == "fail" and "another META_VERIFY_TOKEN" in check.detail
    respx.get(url__startswith=HOOK).mock(side_effect=httpx.ConnectError("refused"))
    check = by_title(diagnose(settings(), check_webhook=True))["webhook verification"]
    assert check.status == "fail" and "cannot reach" in check.detail


@respx.mock
def test_network_failure_to_meta() -> None:
    mock_all_ok(respx.mock)
    respx.get(f"{GRAPH}/106540352242922").mock(side_effect=httpx.ConnectTimeout("slow"))
    check = by_title(diagnose(settings(), online=True, check_webhook=False))["Meta phone number"]
    assert check.status == "fail" and "cannot reach" in check.detail


@respx.mock
def test_the_webhook_check_never_logs_the_verify_token(caplog: pytest.LogCaptureFixture) -> None:
    token = "s3cret verify/token+1"  # spaces and slashes: the URL carries it quoted
    respx.get(url__startswith=HOOK).mock(
        side_effect=lambda request: httpx.Response(200, text=request.url.params["hub.challenge"])
    )
    caplog.set_level(logging.INFO, logger="httpx")

    check = by_title(diagnose(settings(meta_verify_token=token), check_webhook=True))["webhook verification"]

    assert check.status == "ok"
    [call] = respx.calls
    assert call.request.url.params["hub.verify_token"] == token  # the handshake still carries it
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("hub.challenge" in line for line in lines)  # httpx did log the request
    for form in (token, quote(token, safe=""), quote_plus(token)):
        assert form not in caplog.text
