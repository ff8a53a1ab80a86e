"""A default Django project (``startproject`` plus the Install section of docs/django.md, SQLite
as Django creates it) under gunicorn with 2 workers takes a burst of signed webhooks without one
error: the ORM store waits out a locked database instead of failing, and a reply that the provider
accepted is never reported as failed (issue 16, item 1)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_text, twilio_text
from eki_whatsapp.testing.processes import app_env, free_port, gunicorn, wait_for

pytestmark = pytest.mark.slow

APP_SECRET = "burst-app-secret"
VERIFY = "burst-verify"
UNSET = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WHATSAPP_WEBHOOK_URL", "WHATSAPP_PROVIDER")
BURST = 40  # webhooks: half Meta, half Twilio, sent 8 at a time

BOT = """
def setup(bot):
    @bot.on_message
    def echo(message, ctx):
        ctx.reply(f"eco: {message.text}")
"""


def default_project(root: Path) -> Path:
    """``django-admin startproject mysite`` with only what docs/django.md's Install section adds
    for the bot (its SQLite ``OPTIONS`` left out: the worst case, a project as Django makes it)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)], check=True, env=env)
    settings = root / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + '\nINSTALLED_APPS += ["eki_whatsapp_django"]\nEKI_WHATSAPP_BOT = "burstbot.setup"\n'
    )
    urls = root / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
        + 'urlpatterns.append(path("webhook/whatsapp/", include("eki_whatsapp_django.urls")))\n'
    )
    (root / "burstbot.py").write_text(BOT)
    return root / "db.sqlite3"


def test_a_burst_of_webhooks_on_a_default_project_with_two_workers_has_no_error(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    database = default_project(project)
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook/whatsapp/"
    with (
        FakeGraphAPI(app_secret=APP_SECRET, webhook_url=url) as graph,
        FakeTwilioAPI(webhook_url=url) as twilio,
    ):
        values = {"DJANGO_SETTINGS_MODULE": "mysite.settings", "META_VERIFY_TOKEN": VERIFY}
        env = app_env(project, {**values, **graph.env(), **twilio.env()}, unset=UNSET)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=project
        )
        log = tmp_path / "gunicorn.log"
        with gunicorn(
            "mysite.wsgi:application",
            url,
            env=env,
            cwd=project,
            verify_token=VERIFY,
            graceful_timeout=5,
            log=log,
        ):
            payloads = [
                meta_text(f"hola {i}", sender=f"3460011{i:04d}")
                if i % 2
                else twilio_text(f"hola {i}", sender=f"+551198765{i:04d}")
                for i in range(BURST)
            ]

            def post(payload: object) -> int:
                secret = APP_SECRET if payload.provider == "meta" else twilio.auth_token  # type: ignore[attr-defined]
                return payload.post(url, secret=secret).status_code  # type: ignore[attr-defined,no-any-return]

            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(post, payloads))
            assert statuses == [200] * BURST

            wait_for(lambda: len(graph.sent) + len(twilio.sent) >= BURST, "every reply", timeout=60)
            assert graph.flush(60) and twilio.flush(60)

            def outbound() -> list[tuple[str, str]]:
                with sqlite3.connect(database, timeout=30) as db:
                    return db.execute(
                        "SELECT message_id, status FROM eki_whatsapp_django_whatsapplog WHERE direction='out'"
                    ).fetchall()

            wait_for(lambda: len(outbound()) == BURST, "every reply's log row", timeout=60)
            # A reply queued or of unknown outcome under load goes out from the outbox a moment
            # later; its row ends like the others.
            final = {"sent", "delivered", "read"}
            wait_for(lambda: {s for _, s in outbound()} <= final, "every reply's final status", timeout=60)
        output = log.read_text(encoding="utf-8", errors="replace")
    # every reply went out once, every status webhook was accepted, nothing failed anywhere
    assert sorted(m.text or "" for m in graph.sent + twilio.sent) == sorted(
        f"eco: hola {i}" for i in range(BURST)
    )
    failed_deliveries = [(d.http_status, d.error) for d in graph.webhooks + twilio.webhooks if not d.ok]
    assert failed_deliveries == []
    assert {status for _, status in outbound_rows(database)} <= {"sent", "delivered", "read"}
    assert "Traceback" not in output and "database is locked" not in output and "ERROR" not in output, output


def outbound_rows(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database, timeout=30) as db:
        return db.execute(
            "SELECT message_id, status FROM eki_whatsapp_django_whatsapplog WHERE direction='out'"
        ).fetchall()
