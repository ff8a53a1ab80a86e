"""End to end: the test site under gunicorn on 127.0.0.1, the Eki bot in background threads, fake
Graph and Twilio APIs. Signed webhooks go in over HTTP; replies must leave through the provider the
message came from; the providers' status webhooks come back; the log is in the database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_text, twilio_text
from eki_whatsapp.testing.processes import app_env, free_port, gunicorn, wait_for

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
EXAMPLE = HERE.parents[2] / "examples" / "django_eki"
#: (PYTHONPATH, settings module, WSGI application, database variable)
PROJECTS = {
    "test-site": (HERE, "ekidj_site.settings", "ekidj_site.wsgi:application", "EKIDJ_DB"),
    "example": (EXAMPLE, "eki_site.settings", "eki_site.wsgi:application", "DJANGO_DB"),
}
APP_SECRET = "e2e-app-secret"
VERIFY = "e2e-verify"
#: The developer's own settings that must not leak into the site.
UNSET = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WHATSAPP_WEBHOOK_URL", "WHATSAPP_PROVIDER")


@pytest.fixture(params=sorted(PROJECTS))
def site(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, FakeGraphAPI, FakeTwilioAPI, Path]]:
    path, settings_module, wsgi, database_variable = PROJECTS[request.param]
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook/whatsapp/"
    database = tmp_path / "site.sqlite3"
    with (
        FakeGraphAPI(app_secret=APP_SECRET, webhook_url=url) as graph,
        FakeTwilioAPI(webhook_url=url) as twilio,
    ):
        values = {
            "DJANGO_SETTINGS_MODULE": settings_module,
            database_variable: str(database),
            "EKIDJ_BOT": "eki_whatsapp.examples.eki.register",  # the test site runs Eki too
            "WHATSAPP_INLINE_HANDLERS": "false",
            "META_VERIFY_TOKEN": VERIFY,
            **graph.env(),
            **twilio.env(),
        }
        env = app_env(path, values, unset=UNSET)
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            env=env,
            check=True,
            cwd=tmp_path,
        )
        # one worker: the test reads what the bot wrote while it runs
        with gunicorn(wsgi, url, env=env, cwd=tmp_path, verify_token=VERIFY, workers=1, graceful_timeout=5):
            yield url, graph, twilio, database


def test_replies_leave_through_the_right_provider_and_everything_is_logged(
    site: tuple[str, FakeGraphAPI, FakeTwilioAPI, Path],
) -> None:
    url, graph, twilio, database = site
    meta_in = meta_text("ver cursos", sender="34600111222")
    twilio_in = twilio_text("ver cursos", sender="+5511987654321")

    assert meta_in.post(url, secret=APP_SECRET).status_code == 200
    assert twilio_in.post(url, secret=twilio.auth_token).status_code == 200
    assert meta_in.post(url, secret=APP_SECRET).status_code == 200  # Meta retries: no second reply
    assert meta_text("forged").post(url, secret="not-the-secret").status_code == 403

    wait_for(lambda: len(graph.sent) >= 1 and len(twilio.sent) >= 1, "both replies")
    assert graph.flush() and twilio.flush()
    assert [m.to for m in graph.sent] == ["34600111222"]
    assert [m.to.lstrip("+") for m in twilio.sent] == ["5511987654321"]
    assert all("Python" in (m.text or "") for m in graph.sent + twilio.sent)
    assert all(d.ok for d in graph.webhooks + twilio.webhooks), [
        (d.http_status, d.error) for d in graph.webhooks + twilio.webhooks if not d.ok
    ]

    def log() -> tuple[list[tuple[str, str, str, str, str]], int]:
        with sqlite3.connect(database) as db:
            rows = db.execute(
                "SELECT direction, provider, message_id, status, reason FROM eki_whatsapp_django_whatsapplog"
            ).fetchall()
            memories = db.execute("SELECT COUNT(*) FROM eki_whatsapp_django_whatsappmemory").fetchone()[0]
        return rows, memories

    expected_out = {
        ("meta", graph.sent[0].id): ("read", "reply-channel"),
        ("twilio", twilio.sent[0].id): ("read", "reply-channel"),
    }
    # The handler writes its outbound row after the provider answered; statuses may be faster.
    wait_for(lambda: {(p, m): (s, r) for d, p, m, s, r in log()[0] if d == "out"} == expected_out, "log rows")
    rows, memories = log()
    inbound = {(p, m) for d, p, m, _, _ in rows if d == "in"}
    assert inbound == {("meta", meta_in.message_id), ("twilio", twilio_in.message_id)}
    assert len(rows) == 4
    assert memories == 2  # the agent's memory went through the ORM store from async code
