"""Runners: where claimed work runs.

The bot records every event that has work in the same write as its log row (``pending``), then
hands it to a runner. A runner decides only *where* the work runs: :class:`ThreadRunner` (the
default, ``WHATSAPP_RUNNER=threads``) runs it on the web process's handler threads;
:class:`~eki_whatsapp.runners.celery.CeleryRunner` (``WHATSAPP_RUNNER=celery``) sends
``work.id`` to Celery workers, where :meth:`Bot.process_work <eki_whatsapp.bot.Bot.process_work>`
runs it. Whatever a runner loses (a crash, a lost task), the sweeper finds again in the store
when its lease expires (docs/deployment.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import ConfigError
from ..events import Event
from ..store.base import Lease

if TYPE_CHECKING:
    from ..bot import Bot

__all__ = ["Runner", "ThreadRunner", "Work", "make_runner"]


@dataclass(frozen=True, slots=True)
class Work:
    """One event to handle.

    Attributes:
        id: the store's id of the work (``m12``, ``s7``): stable across attempts.
        event: the event, when the process that recorded it hands it over (``None``: it is read
            back from the store when claimed).
        lease: the lease this process already holds on it (``None``: the runner's worker claims
            it with :meth:`~eki_whatsapp.store.base.Store.claim_work` before running it).
        attempts: attempts so far, this one included (for the backoff after a failure).
    """

    id: str
    event: Event | None = None
    lease: Lease | None = None
    attempts: int = 1


@runtime_checkable
class Runner(Protocol):
    """Where claimed work runs."""

    #: Whether work is leased to this process when it is recorded (the worker that runs it, here
    #: or elsewhere, runs it under that lease), or recorded unclaimed for that worker to claim.
    leases_here: bool
    #: Whether ``submit`` runs the work in this process (the async face then runs it on its own
    #: event loop instead), or elsewhere.
    in_process: bool

    def submit(self, work: Work) -> None:
        """Run ``work`` (soon, somewhere): call ``bot.process_work(work)`` where it runs."""
        ...

    def close(self) -> None:
        """Stop taking work (work already submitted may finish or be swept up later)."""
        ...


def make_runner(name: str, bot: Bot, *, celery_app: object = None) -> Runner:
    """The runner ``WHATSAPP_RUNNER`` names (``celery_app``: the app of the Celery runner)."""
    if name == "threads":
        from .threads import ThreadRunner

        return ThreadRunner(bot)
    if name == "celery":
        from .celery import CeleryRunner

        return CeleryRunner(bot, celery_app)
    raise ConfigError(f"WHATSAPP_RUNNER={name!r} is not a runner: use 'threads' (the default) or 'celery'")


def __getattr__(name: str) -> object:
    if name == "ThreadRunner":
        from .threads import ThreadRunner

        return ThreadRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
