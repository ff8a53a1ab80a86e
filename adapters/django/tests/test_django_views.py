"""The webhook view through Django's test client: challenge, signatures, events, log rows, proxies."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.test import Client, RequestFactory
from ekidj_site.testkit import META_SECRET, PUBLIC_URL, TWILIO_TOKEN, VERIFY_TOKEN, WEBHOOK, RecordingProvider

from eki_whatsapp import Bot
from eki_whatsapp.testing.payloads import Payload, meta_status, meta_text, twilio_status, twilio_text
from eki_whatsapp_django import create_bot, get_bot, whatsapp_view
from eki_whatsapp_django.models import WhatsAppLog

pytestmark = pytest.mark.django_db


def post(
    client: Client, payload: Payload, *, url: str = PUBLIC_URL, path: str = WEBHOOK, **extra: Any
) -> Any:
    secret = META_SECRET if payload.provider == "meta" else TWILIO_TOKEN
    headers = payload.headers(secret, url)
    headers.pop("Content-Type")
    return client.post(path, data=payload.body, content_type=payload.content_type, headers=headers, **extra)


# --- Meta challenge ------------------------------------------------------------------------------
def test_meta_challenge_answers_the_challenge(client: Client, project_bot: Bot) -> None:
    response = client.get(
        WEBHOOK, {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"


def test_meta_challenge_with_wrong_token_is_403(client: Client, project_bot: Bot) -> None:
    response = client.get(
        WEBHOOK, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"}
    )
    assert response.status_code == 403
    assert b"1158201444" not in response.content


# --- signed posts --------------------------------------------------------------------------------
def test_signed_meta_text_is_logged_and_answered_on_meta(
    client: Client, project_bot: Bot, providers: dict[str, RecordingProvider]
) -> None:
    payload = meta_text("Does it come in another color?", sender="16505551234", profile_name="Sheena")
    response = post(client, payload)

    assert response.status_code == 200
    inbound = WhatsAppLog.objects.get(direction="in")
    assert (inbound.provider, inbound.message_id, inbound.sender) == (
        "meta",
        payload.message_id,
        "16505551234",
    )
    assert inbound.text == "Does it come in another color?"
    assert inbound.status == "received"
    assert inbound.raw["text"]["body"] == "Does it come in another color?"
    assert [to for to, _ in providers["meta"].sent] == ["16505551234"]
    assert providers["twilio"].sent == []
    outbound = WhatsAppLog.objects.get(direction="out")
    assert (outbound.provider, outbound.recipient, outbound.reason) == (
        "meta",
        "16505551234",
        "reply-channel",
    )
    assert outbound.text == "echo: Does it come in another color?"


def test_signed_twilio_text_is_logged_and_answered_on_twilio(
    client: Client, project_bot: Bot, providers: dict[str, RecordingProvider]
) -> None:
    payload = twilio_text("Olá, tudo bem?", sender="+5511987654321")
    response = post(client, payload)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response/>" in response.content
    inbound = WhatsAppLog.objects.get(direction="in")
    assert (inbound.provider, inbound.message_id, inbound.text) == (
        "twilio",
        payload.message_id,
        "Olá, tudo bem?",
    )
    assert [to for to, _ in providers["twilio"].sent] == ["5511987654321"]
    assert providers["meta"].sent == []
    assert WhatsAppLog.objects.get(direction="out").provider == "twilio"


def test_csrf_is_not_required(project_bot: Bot) -> None:
    response = post(Client(enforce_csrf_checks=True), meta_text("hi"))
    assert response.status_code == 200


def test_a_retried_delivery_is_logged_and_answered_once(
    client: Client, project_bot: Bot, providers: dict[str, RecordingProvider]
) -> None:
    payload = meta_text("only once")
    assert post(client, payload).status_code == 200
    assert post(client, payload).status_code == 200
    assert WhatsAppLog.objects.filter(direction="in").count() == 1
    assert len(providers["meta"].sent) == 1


# --- refusals ------------------------------------------------------------------------------------
def test_bad_meta_signature_is_403_and_nothing_is_logged(client: Client, project_bot: Bot) -> None:
    payload = meta_text("forged")
    response = client.post(
        WEBHOOK,
        data=payload.body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": payload.signature("not-the-app-secret")},
    )
    assert response.status_code == 403
    assert not WhatsAppLog.objects.exists()


def test_bad_twilio_signature_is_403_and_nothing_is_logged(client: Client, project_bot: Bot) -> None:
    payload = twilio_text("forged")
    response = client.post(
        WEBHOOK,
        data=payload.body,
        content_type=payload.content_type,
        headers={"X-Twilio-Signature": payload.signature("wrong-token", PUBLIC_URL)},
    )
    assert response.status_code == 403
    assert not WhatsAppLog.objects.exists()


def test_malformed_json_is_400(client: Client, project_bot: Bot) -> None:
    body = b'{"object": "whatsapp_business_account", "entry": ['
    response = client.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": Payload("meta", body, "application/json").signature(META_SECRET)},
    )
    assert response.status_code == 400
    assert not WhatsAppLog.objects.exists()


def test_unknown_content_type_is_415(client: Client, project_bot: Bot) -> None:
    response = client.post(WEBHOOK, data=b"<xml/>", content_type="application/xml")
    assert response.status_code == 415


def test_get_without_challenge_parameters_is_400(client: Client, project_bot: Bot) -> None:
    assert client.get(WEBHOOK).status_code == 400


# --- statuses ------------------------------------------------------------------------------------
def test_meta_statuses_raise_the_outbound_row_and_never_downgrade(client: Client, project_bot: Bot) -> None:
    post(client, meta_text("where is my order?", sender="16505551234"))  # the echo reply is logged
    row = WhatsAppLog.objects.get(direction="out")
    assert row.status == "accepted"
    message_id = row.message_id
    assert message_id is not None

    assert post(client, meta_status(message_id, "delivered", category="service")).status_code == 200
    row.refresh_from_db()
    assert (row.status, row.category) == ("delivered", "service")

    assert post(client, meta_status(message_id, "read")).status_code == 200
    assert post(client, meta_status(message_id, "delivered")).status_code == 200  # late duplicate
    row.refresh_from_db()
    assert row.status == "read"


def test_twilio_failed_status_records_the_error(client: Client, project_bot: Bot) -> None:
    post(client, twilio_text("remind me", sender="+5511987654321"))  # the echo reply is logged
    message_id = WhatsAppLog.objects.get(direction="out", provider="twilio").message_id
    assert message_id is not None
    response = post(client, twilio_status(message_id, "failed", error_code=63016))
    assert response.status_code == 200
    row = WhatsAppLog.objects.get(message_id=message_id)
    assert (row.status, row.error_code) == ("failed", 63016)


def test_a_status_before_its_outbound_row_is_applied_when_the_row_is_written(
    client: Client, project_bot: Bot
) -> None:
    assert post(client, meta_status("wamid.OUT000999", "delivered")).status_code == 200
    from eki_whatsapp.store import LogEntry

    get_bot().store.log_outbound(
        LogEntry(
            direction="out", provider="meta", type="text", message_id="wamid.OUT000999", status="accepted"
        )
    )
    assert WhatsAppLog.objects.get(message_id="wamid.OUT000999").status == "delivered"


# --- public URL behind proxies (Twilio signs the URL) -----------------------------------------------
def proxied_twilio_post(client: Client) -> Any:
    payload = twilio_text("via the proxy")
    headers = payload.headers(TWILIO_TOKEN, "https://public.example.com/webhook/whatsapp/")
    headers.pop("Content-Type")
    headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.com"})
    return client.post(WEBHOOK, data=payload.body, content_type=payload.content_type, headers=headers)


def test_behind_a_proxy_without_proxy_settings_the_signature_fails(client: Client, project_bot: Bot) -> None:
    assert proxied_twilio_post(client).status_code == 403


def test_proxy_headers_are_honoured_with_djangos_proxy_settings(
    client: Client, settings: Any, providers: dict[str, RecordingProvider]
) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.EKI_WHATSAPP_BOT = create_bot(providers=providers, inline=True)
    assert proxied_twilio_post(client).status_code == 200
    assert WhatsAppLog.objects.filter(text="via the proxy").exists()


def test_explicit_webhook_url_setting_is_used_for_the_signature(
    client: Client, settings: Any, providers: dict[str, RecordingProvider]
) -> None:
    settings.WHATSAPP_WEBHOOK_URL = "https://public.example.com/webhook/whatsapp/"
    settings.EKI_WHATSAPP_BOT = create_bot(providers=providers, inline=True)
    assert proxied_twilio_post(client).status_code == 200


# --- a custom bot through the view factory -------------------------------------------------------
def test_view_factory_serves_a_custom_bot(providers: dict[str, RecordingProvider]) -> None:
    bot = create_bot(providers=providers, inline=True)
    seen: list[str] = []
    bot.on_message(lambda message: seen.append(message.text))
    view = whatsapp_view(bot)
    payload = meta_text("custom")
    request = RequestFactory().post(
        "/hooks/wa/", data=payload.body, content_type="application/json", headers=payload.headers(META_SECRET)
    )
    response = view(request)
    bot.close()
    assert response.status_code == 200
    assert seen == ["custom"]


# --- background handlers ------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_background_handlers_run_between_connection_cleanups(
    client: Client, settings: Any, providers: dict[str, RecordingProvider]
) -> None:
    from django.db import close_old_connections
    from ekidj_site.bot import setup

    bot = create_bot(providers=providers, inline=False)
    setup(bot)
    settings.EKI_WHATSAPP_BOT = bot
    calls: list[str] = []

    def spy() -> None:
        calls.append(threading.current_thread().name)
        close_old_connections()

    with mock.patch("eki_whatsapp_django.threads.close_old_connections", spy):
        assert post(client, meta_text("later")).status_code == 200
        assert bot.drain(timeout=10)

    assert [to for to, _ in providers["meta"].sent] == ["16505551234"]
    assert WhatsAppLog.objects.filter(direction="out", provider="meta").count() == 1
    assert len(calls) >= 2
    assert all(name.startswith("eki-whatsapp") for name in calls)


def test_a_database_failure_is_503_so_the_provider_retries(client: Client, project_bot: Bot) -> None:
    from django.db import connection

    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("DROP TABLE eki_whatsapp_django_whatsappstatus")
    response = post(client, meta_status("wamid.OUT000001", "delivered"))
    assert response.status_code == 503
