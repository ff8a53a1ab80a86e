"""Durable handling: the sweeper, and reading work back from the store.

Every event with work is written ``pending`` with its log row before the webhook is answered
(:meth:`~eki_whatsapp.store.base.Store.record_work`), leased to the process that will run it.
If that process dies, the lease expires and the :class:`Sweeper` of any live process claims
the work and hands it to its runner. The rules (claims, attempts, backoff, ``dead``) are in
:mod:`eki_whatsapp.store.rules`; what is guaranteed is in docs/deployment.md.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .errors import StoreError
from .events import ChangeEvent, Event, InboundMessage, StatusUpdate
from .providers import reread
from .runners import Work
from .store.base import WorkItem, utcnow

if TYPE_CHECKING:
    from .bot import Bot

logger = logging.getLogger("eki_whatsapp.handling")

__all__ = ["Sweeper", "event_of", "idempotency_base"]


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
        except StoreError as exc:  # unavailable for now (or closed under us): next time
            logger.warning("sweeping for unhandled work failed: %s", exc)
        except Exception:
            logger.exception("sweeping for unhandled work failed; trying again later")

    def sweep(self) -> int:
        """Claim what is due now and submit it; returns how many were submitted."""
        bot = self._bot
        if not bot.durable:
            return 0
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
