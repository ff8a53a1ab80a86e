"""The Celery runner (``WHATSAPP_RUNNER=celery``): handler work runs on Celery worker processes.

The web process verifies, logs and acknowledges; for each event with work it records the work
leased to itself (as the thread runner does) and sends a task that names only the work id and
that lease's owner. A worker runs the task with :meth:`Bot.process_work
<eki_whatsapp.bot.Bot.process_work>`: it reads the event back from the store and runs the
handlers only while the row is still open and held by that owner. The store stays the source of
truth: a task the broker loses is found by a sweeper once the lease expires, claimed under a new
owner and sent again; a task redelivered after its worker died (``acks_late`` with
``reject_on_worker_lost``) runs again, and its replies are not duplicated (idempotency keys).
The outbox's deliveries go the same way: a sweeper claims a due send and sends a task naming it
and the claim's owner (:meth:`CeleryRunner.submit_send`).

Which app sends the tasks, first found: ``Bot(celery_app=app)``; ``WHATSAPP_CELERY_APP``
(``package.module:attribute``); the app this module builds from ``WHATSAPP_CELERY_BROKER_URL``.
Workers: ``eki-whatsapp worker`` (or ``celery -A eki_whatsapp.celery worker``) get the bot from
``WHATSAPP_BOT``; your own app gets the tasks with :func:`register_tasks` (the Django adapter's
``tasks`` module registers them on the project's app). See docs/deployment.md.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..store.base import Lease, utcnow

if TYPE_CHECKING:
    from ..bot import Bot
    from ..settings import Settings
    from ..store.base import OutboxItem
    from . import Work

logger = logging.getLogger("eki_whatsapp.runners.celery")

__all__ = [
    "SEND_TASK_NAME",
    "TASK_NAME",
    "CeleryRunner",
    "build_app",
    "register_tasks",
    "run_send_task",
    "run_task",
    "worker_bot",
]

#: The name of the task that handles one piece of work (what web processes send by name).
TASK_NAME = "eki_whatsapp.process_work"
#: The name of the task that delivers one send of the outbox, claimed by a sweeper.
SEND_TASK_NAME = "eki_whatsapp.deliver_send"
#: Options of both tasks: a worker killed mid-task leaves it to another (late ack, and a lost
#: worker rejects it back to the queue).
TASK_OPTIONS: dict[str, Any] = {
    "name": TASK_NAME,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
}
SEND_TASK_OPTIONS: dict[str, Any] = {**TASK_OPTIONS, "name": SEND_TASK_NAME}
EXTRA_HINT = "install the extra: pip install 'eki-whatsapp[celery]'"


def import_celery() -> Any:
    """The ``celery`` package, or a :class:`ConfigError` naming the extra to install."""
    try:
        import celery
    except ImportError:
        raise ConfigError(f"WHATSAPP_RUNNER=celery needs Celery, not installed: {EXTRA_HINT}") from None
    return celery


def load_object(spec: str, setting: str) -> Any:
    """The object ``package.module:attribute`` names (``setting`` is named in errors)."""
    module_name, _sep, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{setting}={spec!r}: use 'package.module:attribute'")
    if os.getcwd() not in sys.path:  # as `celery -A` and `gunicorn` do: the project's modules
        sys.path.insert(0, os.getcwd())
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{setting}={spec!r} cannot be loaded: {exc}") from exc
    return target


# --- the app -----------------------------------------------------------------------------------
_apps: dict[tuple[str, str | None], Any] = {}
_apps_lock = threading.Lock()


def build_app(settings: Settings) -> Any:
    """The library's Celery app for ``WHATSAPP_CELERY_BROKER_URL`` (one per broker and queue in
    a process), with the handling task registered. No result backend: nothing reads results."""
    celery = import_celery()
    url = settings.whatsapp_celery_broker_url
    if not url:
        raise ConfigError(
            "WHATSAPP_RUNNER=celery needs a Celery app: set WHATSAPP_CELERY_BROKER_URL (e.g. "
            "redis://127.0.0.1:6379/0), or WHATSAPP_CELERY_APP=package.module:app for your own app, "
            "or pass Bot(celery_app=app)"
        )
    queue = settings.whatsapp_celery_queue
    with _apps_lock:
        app = _apps.get((url, queue))
        if app is None:
            app = celery.Celery("eki_whatsapp", broker=url, set_as_current=False)
            app.conf.update(
                task_acks_late=True,
                task_reject_on_worker_lost=True,
                task_ignore_result=True,
                # A handler can take seconds (a model call): a worker takes one task at a time
                # per process, so the others stay in the queue for idle workers.
                worker_prefetch_multiplier=1,
                broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False,
            )
            if queue:
                app.conf.task_default_queue = queue
            register_tasks(app)
            _apps[(url, queue)] = app
    return app


def app_for(settings: Settings, app: Any = None) -> Any:
    """The app that sends the tasks: ``app``, else ``WHATSAPP_CELERY_APP``, else :func:`build_app`."""
    if app is not None:
        return app
    import_celery()
    if settings.whatsapp_celery_app:
        return load_object(settings.whatsapp_celery_app, "WHATSAPP_CELERY_APP")
    return build_app(settings)


# --- the web side --------------------------------------------------------------------------------
class CeleryRunner:
    """Sends each piece of work to Celery as a task naming its id and its lease's owner.

    Work is leased to this process when it is recorded, so a sweeper leaves it alone while the
    task waits in the queue; the worker runs it under that lease (docs/deployment.md).
    """

    leases_here = True
    in_process = False

    def __init__(self, bot: Bot, app: Any = None) -> None:
        self._bot = bot
        self.app = app_for(bot.settings, app)
        self.queue = bot.settings.whatsapp_celery_queue

    def submit(self, work: Work) -> None:
        self._send(TASK_NAME, work.id, work.lease.owner if work.lease is not None else None)

    def submit_send(self, item: OutboxItem, lease: Lease) -> None:
        """Send an outbox send a sweeper claimed to a worker, which delivers it under ``lease``."""
        self._send(SEND_TASK_NAME, item.id, lease.owner)

    def _send(self, task: str, item_id: str | None, owner: str | None) -> None:
        options: dict[str, Any] = {"queue": self.queue} if self.queue else {}
        try:
            self.app.send_task(task, args=[item_id, owner], **options)
        except Exception:  # the broker is down: the lease expires, and a sweeper sends it again
            logger.exception("sending %s to Celery failed; a sweeper will send it again", item_id)

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"CeleryRunner(app={getattr(self.app, 'main', None)!r}, queue={self.queue!r})"


# --- the worker side -----------------------------------------------------------------------------
def run_task(bot: Bot, work_id: str, owner: str | None) -> None:
    """What the task does: handle ``work_id`` under the lease of ``owner`` (``None``: claim it
    for this worker first)."""
    from . import Work

    lease = None if owner is None else Lease(owner, utcnow())
    bot.process_work(Work(work_id, None, lease))


_bot: tuple[int, Bot] | None = None
_bot_lock = threading.Lock()


def worker_bot() -> Bot:
    """This worker process's bot: ``WHATSAPP_BOT`` (a Bot, or a function returning one, with no
    argument or the settings), built once per process."""
    global _bot
    with _bot_lock:
        if _bot is None or _bot[0] != os.getpid():  # a forked pool process builds its own
            _bot = (os.getpid(), _load_bot())
        return _bot[1]


def _load_bot() -> Bot:
    from ..bot import Bot
    from ..settings import Settings

    settings = Settings()
    if not settings.whatsapp_bot:
        raise ConfigError(
            "WHATSAPP_BOT is not set: a worker needs your bot, e.g. WHATSAPP_BOT=myproject.bot:create_bot "
            "(a Bot, or a function returning one)"
        )
    target = load_object(settings.whatsapp_bot, "WHATSAPP_BOT")
    if callable(target) and not isinstance(target, Bot):
        target = target(settings) if _takes_argument(target) else target()
    if not isinstance(target, Bot):
        raise ConfigError(f"WHATSAPP_BOT={settings.whatsapp_bot!r} gave {target!r}, not a Bot")
    logger.info("worker bot ready: %r", target)
    return target


def _takes_argument(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional and p.default is p.empty for p in params)


def run_send_task(bot: Bot, outbox_id: str, owner: str) -> None:
    """What the delivery task does: deliver the outbox send ``outbox_id`` under ``owner``'s lease."""
    if not bot.router.outbox.deliver_claimed(outbox_id, owner):
        logger.info("%s is no longer held by %s: not delivered here", outbox_id, owner)


def register_tasks(app: Any, bot: Callable[[], Bot] | None = None) -> list[Any]:
    """Register the handling and delivery tasks on your Celery ``app``; its workers get the bot
    from ``bot()`` (default: :func:`worker_bot`, from ``WHATSAPP_BOT``). Returns the tasks."""
    get_bot = bot or worker_bot

    def process_work(work_id: str, owner: str | None = None) -> None:
        run_task(get_bot(), work_id, owner)

    def deliver_send(outbox_id: str, owner: str) -> None:
        run_send_task(get_bot(), outbox_id, owner)

    return [app.task(**TASK_OPTIONS)(process_work), app.task(**SEND_TASK_OPTIONS)(deliver_send)]


# --- workers -------------------------------------------------------------------------------------
def worker_app(settings: Settings | None = None) -> Any:
    """The app ``eki-whatsapp worker`` runs: ``WHATSAPP_CELERY_APP`` (the handling task is
    registered on it if it is not yet) or the one built from ``WHATSAPP_CELERY_BROKER_URL``.
    Worker processes build their bot (``WHATSAPP_BOT``) when they start, so their sweepers run
    before their first task, and close it when they stop."""
    from ..settings import Settings

    settings = settings if settings is not None else Settings()
    if settings.whatsapp_runner != "celery":
        logger.warning(
            "WHATSAPP_RUNNER=%s: web processes with these settings handle events themselves and "
            "send this worker nothing; set WHATSAPP_RUNNER=celery for them and for the workers",
            settings.whatsapp_runner,
        )
    app = app_for(settings)
    if TASK_NAME not in app.tasks or SEND_TASK_NAME not in app.tasks:
        register_tasks(app)
    _connect_worker_signals()
    return app


_signals_connected = False


def _connect_worker_signals() -> None:
    global _signals_connected
    if _signals_connected:
        return
    from celery import signals

    signals.worker_process_init.connect(_start_in_pool_process, weak=False)
    signals.worker_ready.connect(_start_in_worker, weak=False)
    signals.worker_process_shutdown.connect(_stop, weak=False)
    signals.worker_shutdown.connect(_stop, weak=False)
    _signals_connected = True


def _start_in_pool_process(**_: Any) -> None:
    _start()


def _start_in_worker(sender: Any = None, **_: Any) -> None:
    # A prefork worker runs tasks in its pool processes (they start their own bot); the other
    # pools (solo, threads) run them in this process.
    pool = getattr(sender, "pool", None)
    if "prefork" not in type(pool).__module__:
        _start()


def _start() -> None:
    try:
        worker_bot()
    except Exception:  # the first task says it again, with the traceback in its failure
        logger.exception("the worker's bot (WHATSAPP_BOT) could not be built")


def _stop(**_: Any) -> None:
    global _bot
    with _bot_lock:
        built, _bot = _bot, None
    if built is not None and built[0] == os.getpid():
        built[1].close()
