"""Durable handling: the sweeper, and reading work back from the store.

Every event with work is written ``pending`` with its log row before the webhook is answered
(:meth:`~eki_whatsapp.store.base.Store.record_work`), leased to the process that will run it.
If that process dies, the lease expires and the :class:`Sweeper` of any live process claims
the work and hands it to its runner. The rules (claims, attempts, backoff, ``dead``) are in
:mod:`eki_whatsapp.store.rules`; what is guaranteed is in docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ._forks import forks, in_child
from .errors import StoreError
from .events import ChangeEvent, Event, InboundMessage, StatusUpdate
from .providers import reread
from .runners import Work
from .store import rules
from .store.base import Lease, WorkItem, WorkOutcome, batch, utcnow

if TYPE_CHECKING:
    from .bot import Bot
    from .dispatch import UserStates

logger = logging.getLogger("eki_whatsapp.handling")

__all__ = ["Outcomes", "Sweeper", "Worker", "event_of", "idempotency_base"]

_HOST = socket.gethostname()


def event_of(item: WorkItem) -> Event | None:
    """The event of a piece of work, read back from its stored row: by its provider's parser
    when the provider is built in, else from the row's columns (what any provider's row has)."""
    event = reread(item.entry, item.status)
    if event is not None:
        return event
    if item.status is not None:
        s = item.status
        return StatusUpdate(
            provider=s.provider,
            message_id=s.message_id,
            status=s.status,
            timestamp=s.timestamp,
            raw=dict(s.raw or {}),
        )
    entry = item.entry
    if entry is None or entry.timestamp is None:
        return None
    raw = dict(entry.raw) if isinstance(entry.raw, dict) else {}
    if item.kind == "change":
        return ChangeEvent(
            provider=entry.provider,
            field=entry.type.removeprefix("event:"),
            timestamp=entry.timestamp,
            raw=raw,
            account_id=entry.recipient,
        )
    if entry.message_id is None or entry.sender is None or entry.recipient is None:
        return None
    return InboundMessage(
        provider=entry.provider,
        id=entry.message_id,
        sender=entry.sender,
        recipient=entry.recipient,
        type=entry.type,
        timestamp=entry.timestamp,
        raw=raw,
        text=entry.text,
        profile_name=(entry.extra or {}).get("profile_name"),
    )


def idempotency_base(event: Event, work_id: str | None) -> str | None:
    """What the idempotency keys of a handling's sends start with: the event's own id for a
    message (the same whichever store or process handles it), the work id otherwise."""
    if isinstance(event, InboundMessage):
        return f"{event.provider}:{event.id}"
    return work_id


@dataclass(slots=True)
class _Queued:
    work_id: str
    owner: str
    outcome: WorkOutcome
    writes: Sequence[Callable[[], str | None]]
    failed: Callable[[str], WorkOutcome] | None


class Outcomes:
    """Outcomes of work handled on the bot's threads, written to the store together.

    A commit (and on PostgreSQL a statement and the server's work on it) costs more than the
    updates in it, so the handler threads queue each outcome here, and a writer thread of its
    own writes the queue in one transaction (``store.finish_works``, when the store offers it)
    ``age`` seconds after the first outcome came, or the thread that fills it to ``size`` writes
    it at once; :meth:`flush` (``bot.drain()``, ``bot.close()``) writes it now. The bookkeeping
    of a handling that only writes to the store (a status's price) can ride along: it runs just
    before its outcome, in the same transaction on a store with ``batch()`` (SQLite). Until
    then a crash leaves the work leased: it is handled again once the lease expires, which
    at-least-once handling allows (its replies carry idempotency keys, so none is sent twice;
    docs/deployment.md).
    """

    def __init__(self, store: Any, *, size: int = 64, age: float = 0.02) -> None:
        self._store = store
        self._size = size
        self._age = age
        self._forget()
        # A forked child (gunicorn --preload) leaves its parent's outcomes to the parent, and
        # has no writer thread until its first outcome.
        in_child(self._forget)

    def _forget(self) -> None:
        """Start with nothing queued, no writer thread, and locks no thread of a parent holds."""
        self._queue: list[_Queued] = []
        self._lock = threading.Lock()  # the queue
        self._due = threading.Condition(self._lock)  # the writer thread waits here for outcomes
        self._aging = threading.Condition(self._lock)  # ... then here, for more; close() ends it
        self._writing = threading.Lock()  # one write at a time: flush() waits for one under way
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(
        self,
        work_id: str,
        owner: str,
        outcome: WorkOutcome,
        *,
        writes: Sequence[Callable[[], str | None]] = (),
        failed: Callable[[str], WorkOutcome] | None = None,
    ) -> None:
        """Queue one outcome, and the ``writes`` to make with it (each returns an error or
        ``None``; on an error the outcome written is ``failed(error)``)."""
        with self._lock:
            self._queue.append(_Queued(work_id, owner, outcome, writes, failed))
            full = len(self._queue) >= self._size
            if len(self._queue) == 1 and not self._closed:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="eki-whatsapp-outcomes", daemon=True
                    )
                    self._thread.start()
                self._due.notify()
        if full or self._closed:
            self.flush()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._due.wait()
                if self._closed:
                    return
                self._aging.wait(self._age)  # the outcomes that come meanwhile are written with it
            self.flush()

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        with self._lock:
            self._closed = True
            self._due.notify()
            self._aging.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self.flush()

    def flush(self) -> None:
        """Write what is queued now (and wait for a write under way)."""
        with self._writing:
            with self._lock:
                queued, self._queue = self._queue, []
            if queued:
                self._write(queued)

    def _write(self, queued: list[_Queued]) -> None:
        store = self._store
        try:
            with batch(store):
                for item in queued:
                    for write in item.writes:
                        error = write()
                        if error is not None and item.outcome.get("error") is None and item.failed:
                            item.outcome = item.failed(error)
                outcomes = [(q.work_id, q.owner, q.outcome) for q in queued]
                many = getattr(store, "finish_works", None)
                if many is not None:
                    changed = many(outcomes)
                else:
                    changed = [store.finish_work(w, o, **outcome) for w, o, outcome in outcomes]
        except Exception:
            logger.exception("recording %d outcomes failed; their work will be handled again", len(queued))
            return
        for item, ok in zip(queued, changed, strict=True):
            if not ok:
                logger.warning("%s outlived its lease: another worker took it over", item.work_id)


class Worker:
    """Runs claimed work in this process and records its outcome (``bot.process_work``).

    A failed attempt is retried after a backoff; after ``WHATSAPP_HANDLER_MAX_ATTEMPTS`` the
    work is ``dead`` with its error (``eki-whatsapp pending`` shows it).
    """

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self._token = secrets.token_hex(4)
        self._owner: tuple[int, str] = (-1, "")  # (forks() when made, the owner)
        self._lease: tuple[float, timedelta] = (-1.0, timedelta())  # (seconds, as a timedelta)

    @property
    def owner(self) -> str:
        """Who this process is when it holds a lease (host, process id, a token per bot)."""
        if self._owner[0] != forks():  # a fork is another owner
            pid = os.getpid()
            self._owner = (forks(), f"{_HOST}:{pid}:{self._token}")
        return self._owner[1]

    def new_lease(self) -> Lease:
        """A lease for this process, ``WHATSAPP_HANDLER_LEASE_SECONDS`` from now."""
        seconds = self._bot.settings.whatsapp_handler_lease_seconds
        if self._lease[0] != seconds:  # (made once: a lease is taken for every message)
            self._lease = (seconds, timedelta(seconds=seconds))
        return Lease(self.owner, utcnow() + self._lease[1])

    def claimed(self, work: Work) -> Work | None:
        """``work`` with its lease and event: claimed here when it was recorded unclaimed, read
        back from the store when not given. Work handed over with only a lease (a task of the
        Celery runner) runs only while its row is open and still held by that lease's owner."""
        if work.lease is not None and work.event is not None:
            return work
        store = self._bot.store
        if work.lease is None:
            item = store.claim_work(work.id, self.new_lease(), now=utcnow())
            if item is None:
                return None  # handled, dead, or someone else holds it
            lease: Lease = Lease(item.lease_owner or self.owner, item.lease_until or utcnow())
        else:
            item = store.get_work(work.id)
            if item is None:
                return None
            if work.event is None and (
                item.state not in rules.OPEN_STATES or item.lease_owner != work.lease.owner
            ):
                # Handled already (a task delivered again), or its lease expired and a sweeper
                # took it over under another owner: that owner runs it.
                logger.info("%s is %s, held by %s: not run here", work.id, item.state, item.lease_owner)
                return None
            lease = Lease(work.lease.owner, item.lease_until or work.lease.until)
        event = work.event or event_of(item)
        if event is None:
            store.finish_work(work.id, lease.owner, error="the stored event cannot be read back")
            return None
        return Work(work.id, event, lease, item.attempts)

    def process(self, work: Work, outcomes: Outcomes | None = None, states: UserStates | None = None) -> None:
        """Handle one piece of work here, and record the outcome (queued in ``outcomes``, to be
        written with others and with the handling's bookkeeping, when given)."""
        handlers = self._bot.handlers
        claimed = self.claimed(work)
        if claimed is None or claimed.event is None or claimed.lease is None:
            return
        writes: list[Callable[[], str | None]] = []
        try:
            later = None if outcomes is None else writes.append
            error = handlers.run_sync(claimed.event, claimed.id, later=later, states=states)
        except Exception as exc:  # the store, opt-outs or handoff failing: try again later
            logger.exception("handling %s failed", claimed.id)
            error = f"{type(exc).__name__}: {exc}"
        self.finish(claimed, error, outcomes, writes)

    async def process_async(self, work: Work) -> None:
        """:meth:`process` on the running loop."""
        handlers = self._bot.handlers
        loop = asyncio.get_running_loop()
        executor = self._bot.background.executor
        claimed = await loop.run_in_executor(executor, self.claimed, work)
        if claimed is None or claimed.event is None or claimed.lease is None:
            return
        try:
            error = await handlers.run_async(claimed.event, claimed.id)
        except Exception as exc:
            logger.exception("handling %s failed", claimed.id)
            error = f"{type(exc).__name__}: {exc}"
        await loop.run_in_executor(executor, self.finish, claimed, error)

    def finish(
        self,
        work: Work,
        error: str | None,
        outcomes: Outcomes | None = None,
        writes: Sequence[Callable[[], str | None]] = (),
    ) -> None:
        """Record the outcome: done, to retry after a backoff, or dead (in ``outcomes``, to be
        written with others and after ``writes``, when given)."""
        assert work.lease is not None
        if outcomes is not None:
            outcomes.add(
                work.id,
                work.lease.owner,
                self.outcome(work, error),
                writes=writes,
                failed=lambda late: self.outcome(work, late),
            )
            return
        try:
            if not self._bot.store.finish_work(work.id, work.lease.owner, **self.outcome(work, error)):
                logger.warning("%s outlived its lease: another worker took it over", work.id)
        except Exception:
            logger.exception("recording the outcome of %s failed; it will be handled again", work.id)

    def outcome(self, work: Work, error: str | None) -> WorkOutcome:
        """What an attempt that ended with ``error`` (``None``: handled) leaves: done, to retry
        after a backoff, or dead."""
        # The error as text the store can hold (a lone surrogate or NUL from a tool's bytes would
        # make the store refuse the outcome, and the others written with it, at every attempt).
        outcome: WorkOutcome = {"error": None if error is None else rules.storable_text(error)}
        if error is not None:
            settings = self._bot.settings
            outcome["retry_at"] = rules.retry_at(
                work.attempts,
                settings.whatsapp_handler_max_attempts,
                utcnow(),
                settings.whatsapp_handler_backoff_seconds,
            )
            if outcome["retry_at"] is None:
                logger.error("%s is dead after %d attempts: %s", work.id, work.attempts, error)
        return outcome


class Sweeper:
    """Hands expired and orphaned work to this process's runner: when the bot starts serving
    (its first webhook: by then the handlers are registered), then every
    ``WHATSAPP_SWEEP_INTERVAL_SECONDS`` on a daemon thread that ``bot.close()`` stops."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the periodic sweep (its first round comes with :meth:`kick` or one interval)."""
        with self._lock:
            if self._bot.settings.whatsapp_sweep_interval_seconds <= 0 or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="eki-whatsapp-sweeper", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        """Sweep now: on the sweeper's thread, or here when there is none (interval 0)."""
        if self._thread is not None:
            self._wake.set()
        else:
            self._sweep_logged()

    def _run(self) -> None:
        interval = self._bot.settings.whatsapp_sweep_interval_seconds
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            if self._stopping:
                return
            self._sweep_logged()

    def _sweep_logged(self) -> None:
        try:
            self.sweep()
        except StoreError as exc:  # unavailable for now: next time
            if self._stopping or getattr(self._bot.store, "closed", False):  # closed for good
                self._stopping = True
                logger.debug("the store is closed: the sweeper stops")
                return
            logger.warning("sweeping for unhandled work failed: %s", exc)
        except Exception:
            if self._stopping:  # the bot closed during this sweep: its store may be gone too
                logger.debug("a sweep cut short by close()", exc_info=True)
                return
            logger.exception("sweeping for unhandled work failed; trying again later")

    def sweep(self) -> int:
        """Claim what is due now and submit it, then deliver the outbox sends that are due;
        returns how many were submitted."""
        submitted = self._sweep_work()
        bot = self._bot
        try:
            hand_over = getattr(bot.runner, "submit_send", None)
            if hand_over is None:  # a runner that runs work here delivers here
                bot.flush_outbox()
            else:  # claimed here, delivered where the runner runs work (a Celery worker)
                bot.router.outbox.deliver_due(
                    bot.owner, bot.settings.whatsapp_handler_lease_seconds, hand_over=hand_over
                )
        except StoreError as exc:  # unavailable for now: next time
            logger.warning("delivering queued sends failed: %s", exc)
        return submitted

    def _sweep_work(self) -> int:
        bot = self._bot
        settings = bot.settings
        lease = bot.new_lease()
        items = bot.store.claim_due(lease, now=utcnow(), max_attempts=settings.whatsapp_handler_max_attempts)
        for item in items:
            event = event_of(item)
            if event is None:
                bot.store.finish_work(item.id, lease.owner, error="the stored event cannot be read back")
                continue
            logger.info(
                "handling %s again (attempt %d): %s", item.id, item.attempts, item.last_error or "orphaned"
            )
            bot.runner.submit(Work(item.id, event, lease, item.attempts))
        return len(items)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
