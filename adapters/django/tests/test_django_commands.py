"""The management commands ``whatsapp_doctor`` and ``whatsapp_send``."""

from __future__ import annotations

from datetime import datetime, timezone
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from ekidj_site.testkit import RecordingProvider

from eki_whatsapp import Bot, InboundMessage
from eki_whatsapp_django.models import WhatsAppLog

pytestmark = pytest.mark.django_db


def run(name: str, **options: Any) -> str:
    out = StringIO()
    call_command(name, stdout=out, **options)
    return out.getvalue()


def test_doctor_passes_on_a_complete_configuration() -> None:
    report = run("whatsapp_doctor")
    assert "✔ meta credentials: all variables set" in report
    assert "✔ twilio credentials: all variables set" in report
    assert "✔ META_APP_SECRET" in report
    assert "✔ migrations: applied" in report
    assert "webhook mounted at /webhook/whatsapp/" in report
    assert "0 problem(s)" in report


def test_doctor_names_what_is_missing_and_fails(settings: Any) -> None:
    settings.META_WHATSAPP_TOKEN = None
    settings.META_APP_SECRET = None
    out = StringIO()
    with pytest.raises(CommandError, match="problems"):
        call_command("whatsapp_doctor", stdout=out)
    report = out.getvalue()
    assert "✖ meta credentials: missing META_WHATSAPP_TOKEN" in report
    assert "META_APP_SECRET: not set" in report
    assert "the bot cannot be built" in report


def test_doctor_reports_an_invalid_setting_by_name(settings: Any) -> None:
    settings.WHATSAPP_PROVIDER = "telegram"
    with pytest.raises(CommandError, match="WHATSAPP_PROVIDER"):
        run("whatsapp_doctor")


def test_send_goes_through_the_bot_and_is_logged(
    project_bot: Bot, providers: dict[str, RecordingProvider]
) -> None:
    project_bot.store.record_inbound(  # the user wrote recently: the window is open
        InboundMessage(
            provider="twilio",
            id="SM1",
            sender="5511987654321",
            recipient="14155238886",
            type="text",
            timestamp=datetime.now(timezone.utc),
            raw={},
            text="hi",
        )
    )
    output = run("whatsapp_send", to="+5511987654321", text="Your order shipped", provider="twilio")
    assert output.startswith("sent with twilio: SMout")
    assert "reason explicit" in output  # why this provider: --provider asked for it
    assert [to for to, _ in providers["twilio"].sent] == ["+5511987654321"]
    row = WhatsAppLog.objects.get(direction="out")
    assert (row.provider, row.recipient, row.text) == ("twilio", "5511987654321", "Your order shipped")


def test_send_outside_the_window_fails_with_the_reason(
    project_bot: Bot, providers: dict[str, RecordingProvider]
) -> None:
    with pytest.raises(CommandError, match="24-hour window"):
        run("whatsapp_send", to="+5511987654321", text="Hello?", provider="meta")
    assert providers["meta"].sent == []


def test_doctor_online_checks_the_credentials_with_the_providers(settings: Any) -> None:
    from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI

    with FakeGraphAPI(auto_status=()) as graph, FakeTwilioAPI(auto_status=()) as twilio:
        for name, value in {**graph.env(), **twilio.env()}.items():
            setattr(settings, name, value)
        report = run("whatsapp_doctor", online=True)
        graph.token_expired = True
        out = StringIO()
        with pytest.raises(CommandError):
            call_command("whatsapp_doctor", online=True, stdout=out)
    assert "Eki Test" in report  # the phone number's verified name, from the Graph API
    assert "is active" in report  # the Twilio account
    assert "✖" in out.getvalue() and "META_WHATSAPP_TOKEN" in out.getvalue()
    assert graph.token not in out.getvalue()
