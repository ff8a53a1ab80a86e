"""End to end, scaled out: 2 web processes (gunicorn, Flask) + 2 Celery workers + PostgreSQL +
Redis. Signed messages from both providers arrive while one web worker and one Celery worker are
killed with ``kill -9``, each in the middle of its work; every message is answered exactly once
(counted at the fake Graph and Twilio APIs on 127.0.0.1) and the free allowance is counted
exactly (each reply is priced as marketing, so each Meta reply takes a free message while any
are left)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from eki_whatsapp.costs import Costs
from eki_whatsapp.store import open_store
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, Payload, meta_text, twilio_text
from eki_whatsapp.testing.processes import (
    celery_worker,
    children,
    forget_queue,
    free_port,
    gunicorn,
    kill,
    wait_for,
)
from eki_whatsapp.testing.services import require_module, require_service

require_module("celery", hint="pip install 'eki-whatsapp[celery]'")
require_module("flask", hint="the Flask adapter is not installed")

pytestmark = pytest.mark.slow

APP_SECRET = "e2e-celery-secret"
VERIFY = "e2e-celery-verify"
META_MESSAGES, TWILIO_MESSAGES, ALLOWANCE = 30, 20, 25
#: Each worker runs 8 handlers at once (threads: one process, so kill -9 cuts them all off).
POOL: dict[str, Any] = {"pool": "threads", "concurrency": 8}

APP = """
import os
import pathlib
import time

from flask import Flask

from eki_whatsapp import Bot
from eki_whatsapp_flask import whatsapp_blueprint


def create_bot():
    bot = Bot()

    @bot.on_message
    def echo(message, ctx):
        marks = pathlib.Path(os.environ["TEST_MARKS"])
        (marks / f"{message.id}.{os.getpid()}").touch()  # started, and where
        time.sleep(0.5)  # a model call, say: long enough to be cut off
        ctx.reply(f"echo {message.text}", category="marketing")

    return bot


def create_app():
    app = Flask(__name__)
    app.register_blueprint(whatsapp_blueprint(create_bot()), url_prefix="/webhook/whatsapp")
    return app
"""


@pytest.fixture
def site(tmp_path: Path, pg_url: str) -> Iterator[tuple[dict[str, str], str, FakeGraphAPI, FakeTwilioAPI]]:
    require_service("Redis", "127.0.0.1", 6379)
    (tmp_path / "e2e_app.py").write_text(APP, encoding="utf-8")
    (tmp_path / "marks").mkdir()
    url = f"http://127.0.0.1:{free_port()}/webhook/whatsapp/"
    open_store(pg_url).close()  # the schema exists before the processes race to create it
    with FakeGraphAPI(app_secret=APP_SECRET) as graph, FakeTwilioAPI() as twilio:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
            "WHATSAPP_PROVIDER": "dual",
            "WHATSAPP_WEBHOOK_URL": url,  # what Twilio signs
            "WHATSAPP_STORE_URL": pg_url,
            "WHATSAPP_RUNNER": "celery",
            "WHATSAPP_BOT": "e2e_app:create_bot",
            "WHATSAPP_CELERY_BROKER_URL": "redis://127.0.0.1:6379/11",
            "WHATSAPP_CELERY_QUEUE": f"eki-e2e-{uuid.uuid4().hex[:10]}",
            "WHATSAPP_META_FREE_ALLOWANCE": str(ALLOWANCE),
            "WHATSAPP_HANDLER_LEASE_SECONDS": "6",
            "WHATSAPP_SWEEP_INTERVAL_SECONDS": "1",
            "META_VERIFY_TOKEN": VERIFY,
            "TEST_MARKS": str(tmp_path / "marks"),
            **graph.env(),
            **twilio.env(),
        }
        env.pop("WHATSAPP_INLINE_HANDLERS", None)
        env.pop("WHATSAPP_CELERY_APP", None)
        try:
            yield env, url, graph, twilio
        finally:
            forget_queue(env["WHATSAPP_CELERY_BROKER_URL"], env["WHATSAPP_CELERY_QUEUE"])


def deliver(payload: Payload, url: str, secret: str) -> None:
    """Post like a provider: until it is answered 200 (a web worker killed under the request
    drops the connection; Meta and Twilio deliver again)."""
    for _ in range(50):
        try:
            if payload.post(url, secret=secret, timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
    raise AssertionError(f"{payload!r} was never acknowledged")


def test_every_message_is_answered_once_and_the_allowance_is_exact_when_processes_die(
    tmp_path: Path, site: tuple[dict[str, str], str, FakeGraphAPI, FakeTwilioAPI], pg_url: str
) -> None:
    env, url, graph, twilio = site
    marks = tmp_path / "marks"
    payloads = [
        meta_text(f"meta {n}", sender=f"1650555{n:04d}", message_id=f"wamid.E2E{n:04d}")
        for n in range(META_MESSAGES)
    ] + [twilio_text(f"twilio {n}", sender=f"5511987{n:06d}") for n in range(TWILIO_MESSAGES)]
    secrets = {"meta": APP_SECRET, "twilio": twilio.auth_token}
    logs = tmp_path / "logs"
    with (
        gunicorn("e2e_app:create_app()", url, env=env, cwd=tmp_path, verify_token=VERIFY,
                 log=logs / "web.log") as web,
        celery_worker(env=env, cwd=tmp_path, log=logs / "worker-1.log", name="one", **POOL) as one,
        celery_worker(env=env, cwd=tmp_path, log=logs / "worker-2.log", name="two", **POOL),
    ):  # fmt: skip
        half = len(payloads) // 2
        killed = threading.Event()

        def kill_in_the_middle() -> None:
            wait_for(lambda: len(list(marks.iterdir())) >= 3, "handlers to start", timeout=60)
            wait_for(
                lambda: any(p.suffix == f".{one.pid}" for p in marks.iterdir()), "worker one to start one"
            )
            kill(one)  # kill -9 of a Celery worker, mid-handler
            os.kill(children(web.pid)[0], signal.SIGKILL)  # and of a web worker, mid-burst
            killed.set()

        with ThreadPoolExecutor(8) as pool:
            killer = pool.submit(kill_in_the_middle)
            list(pool.map(lambda p: deliver(p, url, secrets[p.provider]), payloads[:half]))
            killer.result(timeout=90)
            list(pool.map(lambda p: deliver(p, url, secrets[p.provider]), payloads[half:]))
        assert killed.is_set()
        assert one.wait(timeout=10) == -signal.SIGKILL

        store = open_store(pg_url)
        try:
            wait_for(lambda: not store.pending_work(), "every message to be handled", timeout=120)
            replies = Counter(m.text for m in [*graph.sent, *twilio.sent])
            assert replies == Counter(f"echo {p.data.get('Body') or _meta_body(p)}" for p in payloads)
            ledger = store.ledger()
            meta_sends = [e for e in ledger if e.provider == "meta" and e.source == "send"]
            assert len(meta_sends) == META_MESSAGES  # every reply priced once
            assert sum(e.source == "allowance" for e in ledger) == ALLOWANCE  # not one more, none lost
            assert Costs(store, free_allowance={"meta": ALLOWANCE}).allowance_left("meta") == 0
        finally:
            store.close()
    started = {p.name.rsplit(".", 1)[1] for p in marks.iterdir()}
    assert str(one.pid) in started and len(started) == 2  # only the two workers ran handlers


def _meta_body(payload: Payload) -> str:
    message = payload.data["entry"][0]["changes"][0]["value"]["messages"][0]
    return str(message["text"]["body"])
