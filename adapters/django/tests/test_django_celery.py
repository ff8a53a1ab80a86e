"""``WHATSAPP_RUNNER = "celery"`` in a Django project: the web side sends with the project's Celery
app (the current one), and the task that ``autodiscover_tasks()`` finds runs the work with the
project's bot. (Real brokers and workers: tests/celery.)"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from eki_whatsapp.testing.services import require_module

celery = require_module("celery", hint="pip install 'eki-whatsapp[celery]'")

from ekidj_site.testkit import RecordingProvider  # noqa: E402

from eki_whatsapp.runners.celery import SEND_TASK_NAME, TASK_NAME, CeleryRunner  # noqa: E402
from eki_whatsapp.testing import meta_text  # noqa: E402
from eki_whatsapp_django import create_bot, get_bot, reset_bot  # noqa: E402
from eki_whatsapp_django.conf import close_bot  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "celery-django-secret"
URL = "https://bot.example.com/webhook/whatsapp/"


@pytest.fixture
def project_app() -> Any:
    """The project's app as ``myproject/celery.py`` makes it: current, with a broker, tasks found."""
    app = celery.Celery("ekidj_site", broker="memory://", set_as_current=False)
    app.conf.task_always_eager = False
    previous = celery.current_app._get_current_object()
    app.set_current()
    # What autodiscover_tasks() imports in a worker (here without Celery's Django checks run).
    import eki_whatsapp_django.tasks  # noqa: F401

    yield app
    previous.set_current()


def test_the_web_side_sends_with_the_projects_app_and_the_task_runs_the_projects_bot(
    settings: Any, project_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WHATSAPP_RUNNER = "celery"
    settings.WHATSAPP_INLINE_HANDLERS = False
    settings.META_APP_SECRET = SECRET
    settings.WHATSAPP_WEBHOOK_URL = URL
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr(project_app, "send_task", lambda name, args, **_: sent.append((name, args)))
    meta = RecordingProvider("meta", "106540352242922")

    def build() -> Any:
        bot = create_bot(providers={"meta": meta})
        bot.on_message(lambda message, ctx: ctx.reply(f"echo {message.text}"))
        return bot

    settings.EKI_WHATSAPP_BOT = build
    reset_bot()
    bot = get_bot()
    try:
        assert isinstance(bot.runner, CeleryRunner) and bot.runner.app is project_app
        assert bot.handle(meta_text("hola", message_id="wamid.DJ1").request(URL, secret=SECRET)).status == 200
        [(name, [work_id, owner])] = sent
        assert name == TASK_NAME and meta.sent == []
        assert SEND_TASK_NAME in project_app.tasks  # the outbox's deliveries run there too
        project_app.tasks[TASK_NAME](work_id, owner)  # what `celery -A myproject worker` runs
        assert [m.body for _, m in meta.sent] == ["echo hola"]
        assert bot.store.pending_work() == []
    finally:
        reset_bot()
        close_bot(bot)


def test_without_a_project_app_the_error_names_the_settings(settings: Any) -> None:
    settings.WHATSAPP_RUNNER = "celery"
    default = celery.Celery("empty", set_as_current=False)
    previous = celery.current_app._get_current_object()
    default.set_current()
    try:
        with pytest.raises(ImproperlyConfigured, match=r"CELERY_BROKER_URL.*WHATSAPP_CELERY_APP"):
            create_bot()
    finally:
        previous.set_current()
