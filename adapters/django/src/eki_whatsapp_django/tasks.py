"""The handling and delivery tasks on the project's Celery app (``WHATSAPP_RUNNER = "celery"``).

The project's app finds this module with ``app.autodiscover_tasks()`` (Celery's Django guide),
so ``celery -A myproject worker`` handles the events the web processes record, with the bot of
``EKI_WHATSAPP_BOT``. Celery's Django support closes stale database connections around tasks.
"""

from __future__ import annotations

from celery import shared_task
from eki_whatsapp.runners.celery import SEND_TASK_OPTIONS, TASK_OPTIONS, run_send_task, run_task

from .conf import get_bot

__all__ = ["deliver_send", "process_work"]


def _process_work(work_id: str, owner: str | None = None) -> None:
    run_task(get_bot(), work_id, owner)


def _deliver_send(outbox_id: str, owner: str) -> None:
    run_send_task(get_bot(), outbox_id, owner)


#: ``eki_whatsapp.process_work`` and ``eki_whatsapp.deliver_send``: late acknowledgement,
#: rejected back to the queue when their worker is lost.
process_work = shared_task(**TASK_OPTIONS)(_process_work)
deliver_send = shared_task(**SEND_TASK_OPTIONS)(_deliver_send)
