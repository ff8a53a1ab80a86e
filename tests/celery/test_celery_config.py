"""Choosing the Celery runner: which app sends the tasks, what a task carries, and the errors that
name the setting to fix. (The tasks themselves run on real brokers in test_celery_runner.py.)"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from eki_whatsapp import Bot, ConfigError
from eki_whatsapp.runners.celery import TASK_NAME, CeleryRunner, run_task
from eki_whatsapp.store import MemoryStore
from eki_whatsapp.testing import meta_text

from ..core.helpers import APP_SECRET, make_settings
from ..routing.fakes import FakeProvider

URL = "https://bot.example.com/webhook/whatsapp/"


class RecordingApp:
    """A Celery app's sending face: what the web process would put on the broker."""

    main = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], dict[str, Any]]] = []

    def send_task(self, name: str, args: list[Any], **options: Any) -> None:
        self.sent.append((name, args, options))


def celery_bot(meta: FakeProvider, app: Any = None, store: Any = None, **settings: Any) -> Bot:
    values: dict[str, Any] = {
        "whatsapp_webhook_url": URL,
        "whatsapp_sweep_interval_seconds": 0,
        "whatsapp_runner": "celery",
        **settings,
    }
    return Bot(
        make_settings(**values), store=store or MemoryStore(), providers={"meta": meta}, celery_app=app
    )


def test_the_web_process_sends_the_work_id_and_its_lease_owner_and_runs_nothing() -> None:
    meta, app = FakeProvider("meta", "106540352242922"), RecordingApp()
    bot = celery_bot(meta, app, whatsapp_celery_queue="whatsapp")
    bot.on_message(lambda message, ctx: ctx.reply(f"echo: {message.text}"))
    assert bot.handle(meta_text("hola", message_id="wamid.C1").request(URL, secret=APP_SECRET)).status == 200
    bot.drain()
    [(name, [work_id, owner], options)] = app.sent
    assert (name, owner, options) == (TASK_NAME, bot.owner, {"queue": "whatsapp"})
    assert meta.sent == []  # only verified, logged and acknowledged
    item = bot.store.get_work(work_id)
    assert item is not None and item.state == "pending" and item.lease_owner == bot.owner

    run_task(bot, work_id, owner)  # what the worker does with the task
    run_task(bot, work_id, owner)  # the task delivered again: it is handled already
    assert [m.body for _, m in meta.sent] == ["echo: hola"]
    assert bot.store.pending_work() == []
    bot.close()


def test_a_task_whose_lease_another_worker_took_over_does_not_run() -> None:
    meta, app = FakeProvider("meta", "106540352242922"), RecordingApp()
    bot = celery_bot(meta, app)
    bot.on_message(lambda message, ctx: ctx.reply("hi"))
    bot.handle(meta_text("hola", message_id="wamid.C2").request(URL, secret=APP_SECRET))
    [(_, [work_id, _owner], _)] = app.sent
    run_task(bot, work_id, "host:1:gone")  # a stale task: the row is held by someone else
    assert meta.sent == [] and bot.store.get_work(work_id) is not None
    bot.close()


def test_a_broker_that_cannot_take_the_task_does_not_fail_the_webhook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class DownApp(RecordingApp):
        def send_task(self, name: str, args: list[Any], **options: Any) -> None:
            raise ConnectionRefusedError(111, "Connection refused")

    bot = celery_bot(FakeProvider("meta", "106540352242922"), DownApp())
    bot.on_message(lambda message, ctx: ctx.reply("hi"))
    assert bot.handle(meta_text("hola", message_id="wamid.C3").request(URL, secret=APP_SECRET)).status == 200
    [item] = bot.store.pending_work()  # recorded, leased: a sweeper sends it when the lease ends
    assert item.state == "pending" and item.lease_owner == bot.owner
    assert f"sending {item.id} to Celery failed; a sweeper will send it again" in caplog.text
    bot.close()


def test_without_an_app_or_a_broker_url_the_error_names_the_settings() -> None:
    with pytest.raises(ConfigError, match="WHATSAPP_CELERY_BROKER_URL") as info:
        celery_bot(FakeProvider("meta", "106540352242922"))
    assert "WHATSAPP_CELERY_APP" in str(info.value) and "celery_app" in str(info.value)


def test_an_unknown_runner_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"'threads' .*'celery'"):
        celery_bot(FakeProvider("meta", "106540352242922"), whatsapp_runner="rq")


def test_the_app_can_be_named_by_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("my_celery_app")
    module.app = RecordingApp()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_celery_app", module)
    bot = celery_bot(FakeProvider("meta", "106540352242922"), whatsapp_celery_app="my_celery_app:app")
    assert isinstance(bot.runner, CeleryRunner) and bot.runner.app is module.app  # type: ignore[attr-defined]
    bot.close()
    with pytest.raises(ConfigError, match="WHATSAPP_CELERY_APP='my_celery_app:nope' cannot be loaded"):
        celery_bot(FakeProvider("meta", "106540352242922"), whatsapp_celery_app="my_celery_app:nope")


def test_without_celery_installed_the_core_imports_and_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['celery'] = None\n"  # as if not installed
        "import eki_whatsapp, eki_whatsapp.bot, eki_whatsapp.runners, eki_whatsapp.cli\n"
        "from eki_whatsapp import Bot, ConfigError, MemoryStore, Settings\n"
        "try:\n"
        "    Bot(Settings(_env_file=None, whatsapp_provider='meta', meta_whatsapp_token='t',\n"
        "        meta_phone_number_id='1', whatsapp_runner='celery',\n"
        "        whatsapp_celery_broker_url='redis://127.0.0.1:6379/0'), store=MemoryStore())\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "WHATSAPP_RUNNER=celery needs Celery" in out and "pip install 'eki-whatsapp[celery]'" in out


def test_the_doctor_checks_the_celery_settings_and_reaches_the_broker() -> None:
    from eki_whatsapp.doctor import broker_check, diagnose

    def checks(**settings: Any) -> dict[str, Any]:
        return {c.title: c for c in diagnose(make_settings(whatsapp_runner="celery", **settings))}

    bare = checks()
    assert bare["WHATSAPP_CELERY_BROKER_URL"].status == "fail"
    assert "WHATSAPP_CELERY_APP" in bare["WHATSAPP_CELERY_BROKER_URL"].fix
    assert bare["WHATSAPP_BOT"].status == "warn"
    configured = checks(whatsapp_celery_broker_url="redis://:s3cret@127.0.0.1:1/0", whatsapp_bot="app:bot")
    assert (
        configured["WHATSAPP_CELERY_BROKER_URL"].detail == "redis://:***@127.0.0.1:1/0"
    )  # never the password
    assert "WHATSAPP_BOT" not in configured
    down = broker_check("redis://:s3cret@127.0.0.1:1/0", timeout=2)  # what `doctor --online` adds
    assert down.status == "fail" and "s3cret" not in down.detail and "WHATSAPP_CELERY_BROKER_URL" in down.fix
