"""``WHATSAPP_RUNNER=celery`` against the real brokers (Redis, RabbitMQ) and real worker processes
(``eki-whatsapp worker``), sharing a PostgreSQL store: the web bot here only verifies, logs and
acks; the handler runs on a worker; replies are counted at the fake Graph API on 127.0.0.1. A worker killed with ``kill -9``
mid-task, and a task the broker lost, still end in exactly one reply per message; a reply that
could not go waits in the outbox and a worker delivers it."""

from __future__ import annotations

import os
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot
from eki_whatsapp.store import Store, open_store
from eki_whatsapp.testing import FakeGraphAPI, meta_text
from eki_whatsapp.testing.processes import celery_worker, forget_queue, kill, wait_for
from eki_whatsapp.testing.services import require_module, require_service

require_module("celery", hint="pip install 'eki-whatsapp[celery]'")

pytestmark = pytest.mark.slow  # worker processes

APP_SECRET = "celery-test-secret"
URL = "https://bot.example.com/webhook/whatsapp/"

BOT = """
import os
import pathlib
import time

from eki_whatsapp import Bot


def create_bot():
    bot = Bot()

    @bot.on_message
    def echo(message, ctx):
        marks = pathlib.Path(os.environ["TEST_MARKS"])
        (marks / f"{message.id}.{os.getpid()}").write_text(str(os.getpid()))  # started, and where
        time.sleep(float(os.environ.get("TEST_HANDLER_SECONDS", "0")))
        ctx.reply(f"echo {message.text}")

    return bot
"""

BROKERS = {
    # A database of its own: the tests' queues stay out of the default one.
    "redis": ("Redis", 6379, "redis://127.0.0.1:6379/11"),
    "rabbitmq": ("RabbitMQ", 5672, "amqp://guest:guest@127.0.0.1:5672//"),
}


@dataclass
class Setup:
    env: dict[str, str]
    dir: Path
    marks: Path
    log: Path
    graph: FakeGraphAPI
    web: Bot
    queue: str

    def post(self, text: str) -> str:
        payload = meta_text(text, message_id=f"wamid.{uuid.uuid4().hex[:12]}")
        assert self.web.handle(payload.request(URL, secret=APP_SECRET)).status == 200
        assert payload.message_id is not None
        return payload.message_id

    def worker(self, name: str = "worker", **options: Any) -> Any:
        return celery_worker(env=self.env, cwd=self.dir, log=self.log, name=name, **options)

    def store(self) -> Store:
        """The store the web process and the workers share (PostgreSQL)."""
        return open_store(self.env["WHATSAPP_STORE_URL"])

    def started(self) -> list[int]:
        """The process ids the handler started in, one per start."""
        return [int(p.read_text()) for p in self.marks.iterdir()]

    def assert_answered_once(self, texts: list[str]) -> None:
        store = self.store()
        try:
            wait_for(lambda: not store.pending_work(), "every message to be handled", timeout=60)
        finally:
            store.close()
        assert Counter(m.text for m in self.graph.sent) == Counter(f"echo {t}" for t in texts)


@pytest.fixture(params=sorted(BROKERS))
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> Iterator[Setup]:
    name, port, broker = BROKERS[request.param]
    require_service(name, "127.0.0.1", port)
    (tmp_path / "celery_bot.py").write_text(BOT, encoding="utf-8")
    marks = tmp_path / "marks"
    marks.mkdir()
    queue = f"eki-test-{uuid.uuid4().hex[:10]}"  # the brokers are shared: a queue of this test's own
    open_store(pg_url).close()  # the schema exists before the processes race to create it
    with FakeGraphAPI(app_secret=APP_SECRET) as graph:
        settings = {
            "WHATSAPP_PROVIDER": "meta",
            "WHATSAPP_RUNNER": "celery",
            "WHATSAPP_BOT": "celery_bot:create_bot",
            "WHATSAPP_CELERY_BROKER_URL": broker,
            "WHATSAPP_CELERY_QUEUE": queue,
            "WHATSAPP_STORE_URL": pg_url,
            "WHATSAPP_HANDLER_LEASE_SECONDS": "4",
            "WHATSAPP_SWEEP_INTERVAL_SECONDS": "0.5",
            "WHATSAPP_OUTBOX_BACKOFF_SECONDS": "0.5",
            "TEST_MARKS": str(marks),
            **graph.env(),
        }
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
        for key in ("WHATSAPP_INLINE_HANDLERS", "WHATSAPP_CELERY_APP", "WHATSAPP_WEBHOOK_URL"):
            monkeypatch.delenv(key, raising=False)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
        monkeypatch.syspath_prepend(str(tmp_path))
        from celery_bot import create_bot  # type: ignore[import-not-found]

        web = create_bot()
        try:
            yield Setup(env, tmp_path, marks, tmp_path / "worker.log", graph, web, queue)
        finally:
            web.close()
            sys.modules.pop("celery_bot", None)
            forget_queue(broker, queue)


def test_a_message_is_handled_on_a_worker_and_answered(setup: Setup) -> None:
    with setup.worker(pool="prefork", concurrency=2) as worker:  # Celery's default pool
        texts = ["hola", "adiós", "tschüss"]
        for text in texts:
            setup.post(text)
        setup.assert_answered_once(texts)
    # The web process only acked; the worker's pool processes ran the handler (each its own bot).
    assert setup.started() and not {os.getpid(), worker.pid} & set(setup.started())


def test_a_worker_killed_mid_task_leaves_the_task_to_another(setup: Setup) -> None:
    setup.env["TEST_HANDLER_SECONDS"] = "2"
    with setup.worker("first") as first:
        setup.post("order 1")
        wait_for(lambda: bool(setup.started()), "the handler to start on the first worker")
        kill(first)  # kill -9, mid-handler: the task was not acknowledged
        first.wait(timeout=10)
    assert setup.graph.sent == []
    with setup.worker("second") as second:  # RabbitMQ redelivers; with Redis, the sweeper sends it again
        setup.assert_answered_once(["order 1"])
    assert len(set(setup.started()) - {first.pid}) == 1 and second.pid in setup.started()


def test_a_task_the_broker_lost_is_recovered_by_the_sweeper(setup: Setup) -> None:
    setup.post("lost in the queue")
    app = setup.web.runner.app  # type: ignore[attr-defined]
    with app.connection_for_write() as conn:
        assert conn.default_channel.queue_purge(setup.queue) == 1  # the broker dropped the task
    with setup.worker():  # after the lease expires a sweeper claims it and sends it again
        setup.assert_answered_once(["lost in the queue"])


def test_a_reply_that_could_not_go_waits_in_the_outbox_and_a_worker_delivers_it(setup: Setup) -> None:
    store = setup.store()
    try:
        with setup.worker():
            with setup.graph.outage("refuse"):  # Meta is down when the handler replies
                setup.post("are you there?")
                wait_for(lambda: bool(store.pending_sends()), "the reply to be queued in the outbox")
            # A sweeper claims it when it is due and hands it to a worker, which delivers it.
            wait_for(lambda: not store.pending_sends(), "the outbox to be empty", timeout=60)
            setup.assert_answered_once(["are you there?"])
    finally:
        store.close()
    log = setup.log.read_text(encoding="utf-8")
    assert "eki_whatsapp.deliver_send" in log and "succeeded" in log
