"""The support console in a real browser (Debian's Chromium through Playwright).

The test site runs under gunicorn on 127.0.0.1 with the echo bot and fake Graph and Twilio APIs.
One user writes to the same business number through both providers (signed webhooks over HTTP,
a photo included); a staff member logs in to the admin, opens the conversation, takes it over,
replies, sees the reply leave through the fake provider and its ticks arrive, and hands it back.
A screenshot of the conversation page is kept for the docs.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_django_e2e import UNSET

from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_image, meta_text, twilio_text
from eki_whatsapp.testing.browser import chromium_page
from eki_whatsapp.testing.processes import app_env, free_port, gunicorn, wait_for

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
#: Where the screenshots go: the docs' images with ``EKI_SCREENSHOT_DIR=docs/img``, else a temp dir.
SCREENSHOT_DIR = os.environ.get("EKI_SCREENSHOT_DIR")
APP_SECRET = "console-app-secret"
VERIFY = "console-verify"
BUSINESS = "14155238886"  # one number, reachable through both providers
USER = "5215512345678"
STAFF, PASSWORD = "ana", "ana-console-pass"


def receipt_png(width: int = 160, height: int = 100) -> bytes:
    """A small striped PNG (a "payment receipt" photo), made here without an image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def pixel(y: int) -> bytes:
        return b"\x07\x5e\x54" if (y // 10) % 2 else b"\xd9\xfd\xd3"

    rows = b"".join(b"\x00" + pixel(y) * width for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, FakeGraphAPI, FakeTwilioAPI, Path]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/webhook/whatsapp/"
    database = tmp_path / "console.sqlite3"
    with (
        FakeGraphAPI(app_secret=APP_SECRET, webhook_url=url, display_phone_number=BUSINESS) as graph,
        FakeTwilioAPI(webhook_url=url, number="+" + BUSINESS) as twilio,
    ):
        values = {
            "DJANGO_SETTINGS_MODULE": "ekidj_site.settings",
            "EKIDJ_DB": str(database),
            "EKIDJ_BOT": "ekidj_site.bot.setup",
            "WHATSAPP_INLINE_HANDLERS": "false",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "META_VERIFY_TOKEN": VERIFY,
            **graph.env(),
            **twilio.env(),
        }
        env = app_env(HERE, values, unset=UNSET)
        django = [sys.executable, "-m", "django"]
        subprocess.run([*django, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=tmp_path)
        subprocess.run(
            [*django, "createsuperuser", "--noinput", "--username", STAFF, "--email", "ana@example.com"],
            env=env,
            check=True,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )
        wsgi = "ekidj_site.wsgi:application"
        with gunicorn(wsgi, url, env=env, cwd=tmp_path, verify_token=VERIFY, workers=1, graceful_timeout=5):
            yield base, graph, twilio, database


def outbound_statuses(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT message_id, status FROM eki_whatsapp_django_whatsapplog WHERE direction = 'out'"
        ).fetchall()
    return {m: s for m, s in rows if m}


def test_staff_take_over_reply_and_hand_back_in_the_admin(
    site: tuple[str, FakeGraphAPI, FakeTwilioAPI, Path], tmp_path: Path
) -> None:
    base, graph, twilio, database = site
    shots = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    hook = f"{base}/webhook/whatsapp/"
    photo = graph.add_media(receipt_png(), "image/png")
    assert (
        meta_text(
            "Hola, ¿tienen cursos de Python?",
            sender=USER,
            profile_name="Lucía",
            display_phone_number=BUSINESS,
        )
        .post(hook, secret=APP_SECRET)
        .status_code
        == 200
    )
    assert (
        meta_image(
            photo,
            mime_type="image/png",
            caption="mi comprobante",
            sender=USER,
            profile_name="Lucía",
            display_phone_number=BUSINESS,
        )
        .post(hook, secret=APP_SECRET)
        .status_code
        == 200
    )
    assert (
        twilio_text(
            "Les escribo también por aquí", sender="+" + USER, profile_name="Lucía", to="+" + BUSINESS
        )
        .post(hook, secret=twilio.auth_token)
        .status_code
        == 200
    )
    wait_for(lambda: len(graph.sent) >= 1 and len(twilio.sent) >= 1, "the bot's echo replies")
    assert graph.flush() and twilio.flush()

    with chromium_page() as page:
        page.goto(f"{base}/admin/login/?next=/admin/eki_whatsapp_django/conversation/")
        page.fill("#id_username", STAFF)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/eki_whatsapp_django/conversation/")
        # Search works with "+" and spaces; the list shows the number in E.164 with both providers.
        page.fill("#searchbar", "+52 1 55 1234 5678")
        page.press("#searchbar", "Enter")
        row = page.locator("#result_list tbody tr").first
        assert "+" + USER in row.inner_text() and "meta+twilio" in row.inner_text()
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "support-console-list.png"))
        row.get_by_role("link", name="Lucía").click()

        chat = page.locator("#eki-chat")
        chat.get_by_text("Les escribo también por aquí", exact=True).wait_for()
        assert "+" + BUSINESS in page.locator(".eki-head").inner_text()  # not Meta's phone-number id
        image = chat.locator(".eki-media img")
        assert image.get_attribute("src", timeout=5000).startswith("/admin/eki_whatsapp_django/conversation/")
        wait_for(lambda: page.evaluate("img => img.naturalWidth", image.element_handle()) == 160, "the photo")

        page.click("#eki-take")
        page.locator("#eki-state").get_by_text("human").wait_for()
        before = len(twilio.sent) + len(graph.sent)
        # While staff have it, the bot is quiet (the message is still logged and shown).
        assert (
            twilio_text("¿Hola?", sender="+" + USER, profile_name="Lucía", to="+" + BUSINESS)
            .post(hook, secret=twilio.auth_token)
            .status_code
            == 200
        )
        page.reload()
        chat.get_by_text("¿Hola?", exact=True).wait_for()

        page.fill("#eki-text", "Hola Lucía, soy Ana. Sí: el curso empieza el lunes.")
        page.click("#eki-send")
        page.get_by_text("Sent.", exact=True).wait_for()
        wait_for(lambda: len(twilio.sent) + len(graph.sent) == before + 1, "the staff reply to leave")
        reply = twilio.sent[-1]  # the channel the user wrote on last
        assert reply.text == "Hola Lucía, soy Ana. Sí: el curso empieza el lunes."
        assert twilio.flush()
        wait_for(lambda: outbound_statuses(database).get(reply.id) == "read", "the read status")
        page.reload()
        bubble = chat.locator(".eki-msg.eki-outgoing", has_text="soy Ana").last
        assert bubble.get_attribute("data-status") == "read"
        assert "ana" in bubble.inner_text() and "✓✓" in bubble.inner_text()
        page.screenshot(path=str(shots / "support-console-django.png"), full_page=True)
        spanish = page.context.browser.new_context(  # the same page for a Spanish-speaking staff member
            locale="es-ES",
            viewport={"width": 1280, "height": 900},
            storage_state=page.context.storage_state(),
        )
        try:
            es = spanish.new_page()
            es.goto(page.url)
            es.locator("#eki-release").wait_for()
            assert "Devolver al bot" in (es.locator("#eki-release").get_attribute("value") or "")
            es.screenshot(path=str(shots / "support-console-django-es.png"), full_page=True)
        finally:
            spanish.close()

        page.click("#eki-release")
        page.locator("#eki-state").get_by_text("bot").wait_for()
    assert len(graph.sent) + len(twilio.sent) == before + 1
