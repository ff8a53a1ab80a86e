"""End to end with the project's Celery app: the test site under gunicorn with
``WHATSAPP_RUNNER=celery`` only logs and acks; ``celery -A ekidj_site worker`` — the project's app
as Celery's Django guide writes it, the task found by ``autodiscover_tasks()`` — runs the site's
bot and replies through the fake Graph and Twilio APIs."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_text, twilio_text
from eki_whatsapp.testing.processes import app_env, celery_worker, forget_queue, free_port, gunicorn, wait_for
from eki_whatsapp.testing.services import require_module, require_service

require_module("celery", hint="pip install 'eki-whatsapp[celery]'")

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
APP_SECRET = "e2e-celery-app-secret"
VERIFY = "e2e-celery-verify"
BROKER = "redis://127.0.0.1:6379/11"
UNSET = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WHATSAPP_WEBHOOK_URL", "WHATSAPP_PROVIDER", "WHATSAPP_BOT")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, FakeGraphAPI, FakeTwilioAPI, Path]]:
    require_service("Redis", "127.0.0.1", 6379)
    url = f"http://127.0.0.1:{free_port()}/webhook/whatsapp/"
    queue = f"eki-dj-{uuid.uuid4().hex[:10]}"  # the broker is shared: a queue of this test's own
    with (
        FakeGraphAPI(app_secret=APP_SECRET, webhook_url=url) as graph,
        FakeTwilioAPI(webhook_url=url) as twilio,
    ):
        values = {
            "DJANGO_SETTINGS_MODULE": "ekidj_site.settings",
            "EKIDJ_DB": str(tmp_path / "site.sqlite3"),
            "EKIDJ_BOT": "ekidj_site.bot.setup",
            "EKIDJ_CELERY_BROKER_URL": BROKER,
            "WHATSAPP_RUNNER": "celery",
            "WHATSAPP_CELERY_QUEUE": queue,
            "WHATSAPP_INLINE_HANDLERS": "false",
            "META_VERIFY_TOKEN": VERIFY,
            **graph.env(),
            **twilio.env(),
        }
        env = app_env(HERE, values, unset=UNSET)
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            env=env,
            check=True,
            cwd=tmp_path,
        )
        log = tmp_path / "worker.log"
        try:
            with (
                gunicorn("ekidj_site.wsgi:application", url, env=env, cwd=tmp_path, verify_token=VERIFY),
                celery_worker(env=env, cwd=tmp_path, log=log, app="ekidj_site", options=["--queues", queue]),
            ):
                yield url, graph, twilio, log
        finally:
            forget_queue(BROKER, queue)


def test_the_projects_worker_answers_what_the_web_process_acked(
    site: tuple[str, FakeGraphAPI, FakeTwilioAPI, Path],
) -> None:
    url, graph, twilio, log = site
    assert meta_text("hola", sender="34600111222").post(url, secret=APP_SECRET).status_code == 200
    assert twilio_text("olá", sender="+5511987654321").post(url, secret=twilio.auth_token).status_code == 200
    wait_for(lambda: len(graph.sent) + len(twilio.sent) >= 2, "both replies")
    assert [m.text for m in graph.sent] == ["echo: hola"]
    assert [m.text for m in twilio.sent] == ["echo: olá"]
    # Each reply was sent once (above), by the project's worker: its tasks ran there.
    wait_for(lambda: log.read_text(encoding="utf-8").count("succeeded") >= 2, "the worker's tasks to end")
    assert "eki_whatsapp.deliver_send" in log.read_text(encoding="utf-8")  # both tasks were found
