"""End to end, durable handling (docs/deployment.md): a Flask bot under gunicorn (2 workers) whose
handler takes 2 s acks N signed messages, then its processes die — ``kill -9``, or ``SIGTERM``
with a 1 s graceful timeout. Restarted on the same SQLite file, it answers every message exactly
once: the replies are counted at the fake Graph API on 127.0.0.1."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from subprocess import Popen

import pytest

from eki_whatsapp import SQLiteStore
from eki_whatsapp.testing import FakeGraphAPI, meta_text
from eki_whatsapp.testing.processes import app_env, free_port, wait_for
from eki_whatsapp.testing.processes import gunicorn as run_gunicorn

pytestmark = pytest.mark.slow

APP_SECRET = "e2e-durable-secret"
VERIFY = "e2e-durable-verify"
MESSAGES = 10

APP = """
import os
import time

from flask import Flask

from eki_whatsapp import Bot
from eki_whatsapp_flask import whatsapp_blueprint


def create_app():
    bot = Bot()

    @bot.on_message
    def slow_echo(message, ctx):
        time.sleep(2.0)  # a model call, say: long enough to be cut off
        ctx.reply(f"echo {message.text}")

    app = Flask(__name__)
    app.register_blueprint(whatsapp_blueprint(bot), url_prefix="/webhook/whatsapp")
    return app
"""


def gunicorn(app_dir: Path, env: dict[str, str], url: str) -> AbstractContextManager[Popen[bytes]]:
    """gunicorn with 2 workers in its own process group; always gone afterwards."""
    return run_gunicorn("durable_app:create_app()", url, env=env, cwd=app_dir, verify_token=VERIFY)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], FakeGraphAPI, Path]]:
    (tmp_path / "durable_app.py").write_text(APP, encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}/webhook/whatsapp/"
    log = tmp_path / "log.sqlite3"
    with FakeGraphAPI(app_secret=APP_SECRET) as graph:
        values = {
            "WHATSAPP_PROVIDER": "meta",
            "WHATSAPP_STORE_URL": f"sqlite:///{log}",
            "META_VERIFY_TOKEN": VERIFY,
            "WHATSAPP_HANDLER_LEASE_SECONDS": "5",
            "WHATSAPP_SWEEP_INTERVAL_SECONDS": "1",
            **graph.env(),
        }
        unset = ("WHATSAPP_WEBHOOK_URL", "WHATSAPP_INLINE_HANDLERS", "WHATSAPP_RUNNER")
        env = app_env(tmp_path, values, unset=unset)
        yield url, env, graph, log


def ack_all(url: str) -> list[str]:
    texts = [f"order {n}" for n in range(MESSAGES)]
    for text in texts:
        assert meta_text(text).post(url, secret=APP_SECRET).status_code == 200
    return texts


def assert_answered_once(graph: FakeGraphAPI, log: Path, texts: list[str]) -> None:
    store = SQLiteStore(log)
    try:
        wait_for(lambda: not store.pending_work(), "every message to be handled")
    finally:
        store.close()
    replies = Counter(m.text for m in graph.sent)
    assert replies == Counter(f"echo {t}" for t in texts)


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm-1s-grace"])
def test_every_acked_message_is_answered_once_after_the_workers_die(
    setup: tuple[str, dict[str, str], FakeGraphAPI, Path], stop: signal.Signals
) -> None:
    url, env, graph, log = setup
    app_dir = Path(env["PYTHONPATH"].split(os.pathsep)[0])
    with gunicorn(app_dir, env, url) as server:
        texts = ack_all(url)
        if stop == signal.SIGKILL:
            os.killpg(server.pid, signal.SIGKILL)  # master and workers, mid-handler
        else:
            server.send_signal(signal.SIGTERM)  # workers get 1 s, handlers need 2
        server.wait(timeout=20)
    answered_before = len(graph.sent)
    assert answered_before < MESSAGES  # the crash did cut handlers off
    with gunicorn(app_dir, env, url):  # the restart: its sweepers find the expired leases
        assert_answered_once(graph, log, texts)
