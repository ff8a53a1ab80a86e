"""The admin pages of the message log, for a staff user with view permission, on real rows."""

from __future__ import annotations

import html
from datetime import datetime, timezone

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from eki_whatsapp import InboundMessage, StatusUpdate
from eki_whatsapp.store import LogEntry
from eki_whatsapp_django import DjangoStore
from eki_whatsapp_django.models import WhatsAppLog

pytestmark = pytest.mark.django_db

LIST = "/admin/eki_whatsapp_django/whatsapplog/"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def staff(client: Client) -> Client:
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_whatsapplog"))
    client.force_login(user)
    return client


@pytest.fixture
def rows() -> None:
    store = DjangoStore()
    store.record_inbound(
        InboundMessage(
            provider="meta",
            id="wamid.IN1",
            sender="16505551234",
            recipient="106540352242922",
            type="text",
            timestamp=T0,
            raw={"from": "16505551234", "text": {"body": "Does it come in <blue>?"}},
            text="Does it come in <blue>?",
        )
    )
    store.record_inbound(
        InboundMessage(
            provider="twilio",
            id="SM0123456789abcdef0123456789abcdef",
            sender="5511987654321",
            recipient="14155238886",
            type="image",
            timestamp=T0,
            raw={"Body": "Olá, tudo bem?", "NumMedia": "1"},
            text="Olá, tudo bem?",
        )
    )
    store.log_outbound(
        LogEntry(
            direction="out",
            provider="meta",
            type="text",
            message_id="wamid.OUT1",
            sender="106540352242922",
            recipient="16505551234",
            text="Yes, in navy and teal.",
            status="accepted",
            reason="reply-channel",
            raw={"messages": [{"id": "wamid.OUT1"}]},
        )
    )
    for value in ("delivered", "read"):
        store.record_status(
            StatusUpdate(provider="meta", message_id="wamid.OUT1", status=value, timestamp=T0, raw={})
        )


def listed_ids(response: object) -> set[str | None]:
    return {row.message_id for row in response.context["cl"].result_list}  # type: ignore[attr-defined]


def test_list_shows_every_row_with_its_columns(staff: Client, rows: None) -> None:
    response = staff.get(LIST)
    assert response.status_code == 200
    assert listed_ids(response) == {"wamid.IN1", "SM0123456789abcdef0123456789abcdef", "wamid.OUT1"}
    page = response.content.decode()
    assert "Does it come in &lt;blue&gt;?" in page
    assert "5511987654321" in page
    assert "read" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("provider__exact=twilio", {"SM0123456789abcdef0123456789abcdef"}),
        ("direction__exact=out", {"wamid.OUT1"}),
        ("status__exact=read", {"wamid.OUT1"}),
        ("type__exact=image", {"SM0123456789abcdef0123456789abcdef"}),
        ("q=5511987654321", {"SM0123456789abcdef0123456789abcdef"}),
        ("q=navy", {"wamid.OUT1"}),
        ("q=16505551234&direction__exact=in", {"wamid.IN1"}),
    ],
)
def test_filters_and_search(staff: Client, rows: None, query: str, expected: set[str]) -> None:
    response = staff.get(f"{LIST}?{query}")
    assert response.status_code == 200
    assert listed_ids(response) == expected


def test_detail_shows_pretty_raw_json_and_status_history(staff: Client, rows: None) -> None:
    inbound = WhatsAppLog.objects.get(message_id="wamid.IN1")
    page = staff.get(f"{LIST}{inbound.pk}/change/").content.decode()
    assert "<blue>" not in page  # escaped
    assert '<pre style="white-space: pre-wrap; margin: 0">{\n  &quot;from&quot;' in page
    assert '  "text": {\n    "body": "Does it come in <blue>?"\n  }' in html.unescape(page)  # indented

    outbound = WhatsAppLog.objects.get(message_id="wamid.OUT1")
    response = staff.get(f"{LIST}{outbound.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "delivered" in page and "read" in page
    assert "reply-channel" in page


def test_log_is_read_only(staff: Client, rows: None) -> None:
    row = WhatsAppLog.objects.get(message_id="wamid.IN1")
    assert staff.get(f"{LIST}add/").status_code == 403
    staff.post(f"{LIST}{row.pk}/change/", {"text": "rewritten"})
    row.refresh_from_db()
    assert row.text == "Does it come in <blue>?"
    page = staff.get(f"{LIST}{row.pk}/change/").content.decode()
    assert 'name="text"' not in page


def test_superuser_sees_the_status_list_too(client: Client, rows: None) -> None:
    client.force_login(User.objects.create_superuser("root", password="pw"))
    response = client.get("/admin/eki_whatsapp_django/whatsappstatus/?status__exact=read")
    assert response.status_code == 200
    assert [r.status for r in response.context["cl"].result_list] == ["read"]


def test_the_outbox_page_lists_queued_sends_read_only(client: Client) -> None:
    from datetime import timedelta

    from eki_whatsapp.testing.store_contract import queued_send

    user = User.objects.create_user("operator2", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_whatsappoutbox"))
    client.force_login(user)
    outbox_id = DjangoStore().enqueue_send(*queued_send(expires_at=T0 + timedelta(days=1)))
    page = client.get("/admin/eki_whatsapp_django/whatsappoutbox/").content.decode()
    assert outbox_id in page and "queued" in page and "the provider is down" in page
    assert client.get("/admin/eki_whatsapp_django/whatsappoutbox/add/").status_code == 403
