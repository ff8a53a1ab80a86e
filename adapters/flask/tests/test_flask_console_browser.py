"""The Flask console in a real browser (Debian's Chromium through Playwright): the same scenario as
the Django admin — messages from both providers through the real webhook, HTTP Basic login, take
over, reply, the reply leaves through the fake provider and its ticks arrive, hand back."""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, request
from test_flask_e2e import free_port, wait_for
from werkzeug.serving import make_server

from eki_whatsapp import Bot, Settings, SQLiteStore
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_text, twilio_text
from eki_whatsapp.testing.browser import chromium_page
from eki_whatsapp_flask import console_blueprint, whatsapp_blueprint

pytestmark = pytest.mark.slow

#: Where the screenshot goes: the docs' images with ``EKI_SCREENSHOT_DIR=docs/img``, else a temp dir.
SCREENSHOT_DIR = os.environ.get("EKI_SCREENSHOT_DIR")
APP_SECRET = "flask-console-secret"
BUSINESS = "14155238886"
USER = "5511987654321"
STAFF, PASSWORD = "bruno", "bruno-console-pass"


def staff_only() -> str | None:
    auth = request.authorization
    if auth and auth.username == STAFF and hmac.compare_digest(auth.password or "", PASSWORD):
        return auth.username
    return None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, FakeGraphAPI, FakeTwilioAPI, Bot]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hook = f"{base}/webhook/whatsapp/"
    with (
        FakeGraphAPI(app_secret=APP_SECRET, webhook_url=hook, display_phone_number=BUSINESS) as graph,
        FakeTwilioAPI(webhook_url=hook, number="+" + BUSINESS) as twilio,
    ):
        settings = Settings(
            _env_file=None,
            whatsapp_provider="dual",
            **graph.settings_fields(),
            **twilio.settings_fields(),
        )
        bot = Bot(settings, store=SQLiteStore(tmp_path / "console.sqlite3"))

        @bot.on_message(types=["text"])
        def echo(message, ctx):  # type: ignore[no-untyped-def]
            ctx.reply(f"echo: {message.text}")

        app = Flask(__name__)
        app.secret_key = "test-only-flask-secret"
        app.register_blueprint(whatsapp_blueprint(bot), url_prefix="/webhook/whatsapp")
        # A Brazilian team: the console speaks Portuguese.
        app.register_blueprint(console_blueprint(bot, auth=staff_only, language="pt"), url_prefix="/console")
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield base, graph, twilio, bot
        finally:
            server.shutdown()
            thread.join(timeout=10)
            bot.close()


def test_staff_take_over_reply_and_hand_back_in_the_flask_console(
    served: tuple[str, FakeGraphAPI, FakeTwilioAPI, Bot], tmp_path: Path
) -> None:
    base, graph, twilio, bot = served
    shots = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    hook = f"{base}/webhook/whatsapp/"
    assert (
        meta_text(
            "Olá, vocês têm curso de Django?", sender=USER, profile_name="João", display_phone_number=BUSINESS
        )
        .post(hook, secret=APP_SECRET)
        .status_code
        == 200
    )
    assert (
        twilio_text("Escrevo por aqui também", sender="+" + USER, profile_name="João", to="+" + BUSINESS)
        .post(hook, secret=twilio.auth_token)
        .status_code
        == 200
    )
    wait_for(lambda: len(graph.sent) >= 1 and len(twilio.sent) >= 1, "the bot's echo replies")
    assert graph.flush() and twilio.flush()
    bot.drain()

    with chromium_page(http_credentials={"username": STAFF, "password": PASSWORD}) as page:
        page.goto(f"{base}/console/?q=%2B55 11 98765 4321")
        row = page.locator("#conversations tbody tr").first
        assert "+" + USER in row.inner_text() and "meta, twilio" in row.inner_text()
        row.get_by_role("link", name="João").click()
        chat = page.locator("#eki-chat")
        chat.get_by_text("Escrevo por aqui também", exact=True).wait_for()

        page.click("#eki-take")
        page.locator("#eki-state").get_by_text("pessoa").wait_for()
        before = len(graph.sent) + len(twilio.sent)
        page.fill("#eki-text", "Olá João, sou o Bruno. Temos sim!")
        page.click("#eki-send")
        page.get_by_text("Enviado.", exact=True).wait_for()
        wait_for(lambda: len(graph.sent) + len(twilio.sent) == before + 1, "the staff reply to leave")
        reply = twilio.sent[-1]
        assert reply.text == "Olá João, sou o Bruno. Temos sim!"
        assert twilio.flush()
        bot.drain()
        wait_for(
            lambda: (bot.store.get_message("twilio", reply.id) or reply).status == "read", "the read status"
        )
        page.reload()
        bubble = chat.locator(".msg.outgoing", has_text="sou o Bruno").last
        assert bubble.get_attribute("data-status") == "read" and "✓✓" in bubble.inner_text()
        assert STAFF in bubble.inner_text()
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "support-console-flask.png"), full_page=True)
        page.click("#eki-release")
        page.locator("#eki-state").get_by_text("bot").wait_for()
