"""The support console in the admin, without a browser: conversations kept from the log, search
by number/name/text, the chat page, take over / reply / hand back / block through the core,
media through the app, the statuses page, system checks, signals and translations."""

from __future__ import annotations

import gettext
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from ekidj_site.testkit import META_SECRET, PUBLIC_URL, TWILIO_TOKEN, WEBHOOK, RecordingProvider

from eki_whatsapp import Bot
from eki_whatsapp.messages import Text
from eki_whatsapp.testing import Payload, meta_text, twilio_text
from eki_whatsapp_django import signals
from eki_whatsapp_django.checks import check_database, sqlite_problems
from eki_whatsapp_django.models import Conversation, WhatsAppLog

pytestmark = pytest.mark.django_db

LIST = "/admin/eki_whatsapp_django/conversation/"
USER = "5215512345678"
DISPLAY = "15550783881"  # Meta's display number for phone-number id 106540352242922
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "eki_whatsapp_django"


def post(client: Client, payload: Payload) -> None:
    secret = META_SECRET if payload.provider == "meta" else TWILIO_TOKEN
    headers = payload.headers(secret, PUBLIC_URL)
    headers.pop("Content-Type")
    response = client.post(WEBHOOK, data=payload.body, content_type=payload.content_type, headers=headers)
    assert response.status_code == 200


@pytest.fixture
def staff(client: Client) -> Client:
    user = User.objects.create_user("ana", password="pw", is_staff=True)
    for codename in ("view_conversation", "change_conversation", "view_whatsapplog"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


def conversation() -> Conversation:
    return Conversation.objects.get(user=USER)


def test_the_log_feeds_one_conversation_per_user_and_business_number(
    client: Client, project_bot: Bot
) -> None:
    post(client, meta_text("Hola", sender=USER, profile_name="Lucía"))
    post(client, meta_text("¿Siguen?", sender=USER, profile_name="Lucía"))
    conv = conversation()
    # The bot echoed both: the reply from Meta's phone-number id is filed under the display number.
    assert (conv.business, conv.name, conv.providers, conv.unanswered) == (DISPLAY, "Lucía", "meta", 0)
    assert conv.last_text == "echo: ¿Siguen?" and conv.last_direction == "out"
    assert conv.meta_phone_number_id == "106540352242922"
    assert conv.window_until is not None
    project_bot.handoff.take_over(USER, staff="ana")
    post(client, meta_text("¿hola?", sender=USER))
    assert conversation().unanswered == 1
    post(client, twilio_text("Otro", sender="+" + USER))  # another business number: another row
    assert Conversation.objects.filter(user=USER).count() == 2


@pytest.mark.parametrize(
    "query", ["+52 1 55 1234 5678", "5215512345678", "+5215512345678", "Lucía", "comprobante"]
)
def test_search_by_number_with_or_without_plus_by_name_and_by_text(
    client: Client, project_bot: Bot, staff: Client, query: str
) -> None:
    post(client, meta_text("Les mando el comprobante", sender=USER, profile_name="Lucía"))
    post(client, meta_text("Hi", sender="16505551234", profile_name="Sheena"))
    page = staff.get(LIST, {"q": query}).content.decode()
    assert "+5215512345678" in page and "+16505551234" not in page


def test_the_list_shows_the_columns_a_support_desk_needs(
    client: Client, project_bot: Bot, staff: Client
) -> None:
    post(client, meta_text("Hola", sender=USER, profile_name="Lucía"))
    project_bot.handoff.take_over(USER, staff="ana")
    page = staff.get(LIST).content.decode()
    for column in ("Lucía", "+5215512345678", "meta", "echo: Hola", "open until", "human"):
        assert column in page, column
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page)  # times with seconds


def test_the_chat_page_takes_over_replies_and_hands_back(
    client: Client, project_bot: Bot, staff: Client, providers: dict[str, RecordingProvider]
) -> None:
    post(client, meta_text("Hola", sender=USER, profile_name="Lucía"))
    url = f"{LIST}{conversation().pk}/change/"
    page = staff.get(url).content.decode()
    assert "Hola" in page and "echo: Hola" in page and "+15550783881" in page
    assert "/admin/eki_whatsapp_django/whatsapplog/" in page  # links to the raw rows
    staff.post(f"{LIST}{conversation().pk}/act/take/")
    assert project_bot.handoff.state(USER).staff == "ana"
    post(client, meta_text("¿hay alguien?", sender=USER))
    assert [m.body for _, m in providers["meta"].sent] == ["echo: Hola"]  # the bot stays quiet
    staff.post(f"{LIST}{conversation().pk}/act/reply/", {"text": "Hola, soy Ana"})
    assert providers["meta"].sent[-1][1] == Text("Hola, soy Ana")
    row = WhatsAppLog.objects.filter(direction="out").order_by("-id").first()
    assert row is not None and row.extra["staff"] == "ana"
    page = staff.get(url).content.decode()
    assert "Hola, soy Ana" in page and "ana ·" in page
    staff.post(f"{LIST}{conversation().pk}/act/release/")
    assert project_bot.handoff.state(USER).mode == "bot"


def test_viewing_needs_view_permission_and_acting_needs_change(client: Client, project_bot: Bot) -> None:
    post(client, meta_text("Hola", sender=USER))
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    client.force_login(viewer)
    assert client.get(f"{LIST}{conversation().pk}/change/").status_code == 200
    assert client.post(f"{LIST}{conversation().pk}/act/take/").status_code == 403
    assert not project_bot.handoff.is_human(USER)


def test_block_refuses_replies_and_the_page_says_why(
    client: Client, project_bot: Bot, staff: Client, settings: Any
) -> None:
    post(client, meta_text("Hola", sender=USER))
    staff.post(f"{LIST}{conversation().pk}/act/block/")
    assert project_bot.optouts.state(USER).by == "staff:ana"  # type: ignore[union-attr]
    settings.LANGUAGE_CODE = "es"  # the project's language (LANGUAGE_CODE='es')
    response = staff.post(f"{LIST}{conversation().pk}/act/reply/", {"text": "¿sigues?"}, follow=True)
    assert "pidió no recibir más mensajes" in response.content.decode()
    staff.post(f"{LIST}{conversation().pk}/act/unblock/")
    assert not project_bot.optouts.is_opted_out(USER)


def test_a_closed_window_offers_the_template_picker(
    client: Client, project_bot: Bot, staff: Client, settings: Any
) -> None:
    settings.EKI_WHATSAPP_CONSOLE_TEMPLATES = [{"name": "seguimiento", "language": "es"}]
    post(client, meta_text("Hola", sender=USER))
    Conversation.objects.filter(user=USER).update(last_inbound_at=None)
    page = staff.get(f"{LIST}{conversation().pk}/change/").content.decode()
    assert 'id="eki-template"' in page and "seguimiento" in page and 'id="eki-text"' not in page


def test_statuses_show_the_recipient_and_link_to_the_log_row(client: Client, project_bot: Bot) -> None:
    from eki_whatsapp.testing import meta_status

    post(client, meta_text("Hola", sender=USER))
    out = WhatsAppLog.objects.get(direction="out")
    post(client, meta_status(out.message_id, "delivered", recipient=USER))
    admin = User.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    page = client.get("/admin/eki_whatsapp_django/whatsappstatus/").content.decode()
    assert "+5215512345678" in page and f"/admin/eki_whatsapp_django/whatsapplog/{out.pk}/change/" in page
    log = client.get("/admin/eki_whatsapp_django/whatsapplog/").content.decode()
    assert "+15550783881" in log and "106540352242922" not in log  # the business number, not the id


def test_signals_tell_other_apps(
    client: Client, project_bot: Bot, django_capture_on_commit_callbacks: Any
) -> None:
    seen: list[tuple[str, Any]] = []

    def received(sender: Any, conversation: Conversation, message: WhatsAppLog, **kw: Any) -> None:
        seen.append(("received", message.text))

    def requested(sender: Any, conversation: Conversation, user: str, reason: str, **kw: Any) -> None:
        seen.append(("requested", reason))

    def status(sender: Any, status: Any, message: Any, **kw: Any) -> None:
        seen.append(("status", status.status))

    signals.message_received.connect(received)
    signals.handoff_requested.connect(requested)
    signals.status_changed.connect(status)
    try:
        from eki_whatsapp.testing import meta_status

        with django_capture_on_commit_callbacks(execute=True):
            post(client, meta_text("Hola", sender=USER))
            out = WhatsAppLog.objects.get(direction="out")
            post(client, meta_status(out.message_id, "read", recipient=USER))
        from eki_whatsapp_django import get_bot

        get_bot().handoff.request(USER, "quiere una persona")
    finally:
        signals.message_received.disconnect(received)
        signals.handoff_requested.disconnect(requested)
        signals.status_changed.disconnect(status)
    assert seen == [("received", "Hola"), ("status", "read"), ("requested", "quiere una persona")]


# --- system checks -----------------------------------------------------------------------------
def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [m.id or "" for m in messages]


def test_a_bad_provider_fails_manage_py_check(settings: Any) -> None:
    settings.WHATSAPP_PROVIDER = "dul"
    found = checks.run_checks(tags=["eki_whatsapp"])
    assert "eki_whatsapp.E001" in ids(found)
    assert "WHATSAPP_PROVIDER" in next(m.msg for m in found if m.id == "eki_whatsapp.E001")
    with pytest.raises(SystemCheckError, match=r"eki_whatsapp\.E001"):
        call_command("check")


def test_missing_credentials_and_a_bad_bot_path_are_reported(settings: Any) -> None:
    settings.WHATSAPP_PROVIDER = "meta"
    settings.META_WHATSAPP_TOKEN = None
    settings.EKI_WHATSAPP_BOT = "nowhere.setup"
    assert {"eki_whatsapp.E002", "eki_whatsapp.E003"} <= set(ids(checks.run_checks(tags=["eki_whatsapp"])))


def test_the_test_site_passes_the_checks() -> None:
    assert [m for m in checks.run_checks(tags=["eki_whatsapp"]) if m.level >= checks.WARNING] == []


def test_sqlite_without_busy_timeout_or_immediate_transactions_warns() -> None:
    databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3", "OPTIONS": {}}}
    found = ids(sqlite_problems(databases))
    assert "eki_whatsapp.W001" in found
    import django

    if django.VERSION >= (5, 1):
        assert "eki_whatsapp.W002" in found
    assert (
        sqlite_problems({"default": {**databases["default"], "ENGINE": "django.db.backends.postgresql"}})
        == []
    )
    assert check_database() == []  # the test site has both


# --- translations --------------------------------------------------------------------------------
def po_pairs(path: Path) -> dict[str, str]:
    """``msgid -> msgstr`` of a .po file (the header left out)."""

    def join(block: str) -> str:
        raw = "".join(re.findall(r'"(.*)"', block))
        return raw.replace('\\"', '"').replace("\\n", "\n")

    text = path.read_text(encoding="utf-8")
    pairs = re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text, flags=re.M)
    return {join(i): join(s) for i, s in pairs if join(i)}


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_compiled_translations_carry_every_message(lang: str) -> None:
    folder = PACKAGE / "locale" / lang / "LC_MESSAGES"
    with (folder / "django.mo").open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)
    pairs = po_pairs(folder / "django.po")
    assert len(pairs) > 80 and all(pairs.values()), "every message needs a translation"
    missing = [m for m, tr in pairs.items() if catalog.gettext(m) != tr]
    assert not missing, (
        f"run: cd adapters/django/src/eki_whatsapp_django && django-admin compilemessages ({missing[:3]})"
    )


def test_the_admin_speaks_spanish(client: Client, project_bot: Bot, staff: Client, settings: Any) -> None:
    post(client, meta_text("Hola", sender=USER))
    settings.LANGUAGE_CODE = "es"
    page = staff.get(LIST).content.decode()
    assert "conversaciones" in page.lower() and "ventana" in page.lower()
