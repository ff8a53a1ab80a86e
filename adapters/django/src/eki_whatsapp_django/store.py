"""A :class:`~eki_whatsapp.store.base.Store` on the Django ORM.

The rules of :mod:`eki_whatsapp.store.rules` (the same as every store), on whatever database the
project uses:

* dedup is a unique constraint: the insert is attempted and an ``IntegrityError`` means "seen";
* statuses merge into the log row by ``rules.status_changes`` (never downgrade; the first
  pricing category fills an empty one);
* a status that arrives before its outbound row is merged when the row is written — also when
  the two race in concurrent transactions: both paths merge the statuses again after committing.

Every method is synchronous. Called from a running event loop (an ``async`` handler replying),
the query runs in a small worker thread, since Django refuses ORM calls in async context.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, models, transaction
from django.db.models import Q

from eki_whatsapp.events import ChangeEvent, Event, InboundMessage, StatusUpdate
from eki_whatsapp.store import rules
from eki_whatsapp.store.base import Lease, LogEntry, LogQuery, StatusRecord, utcnow

from ._store_db import (
    LOCKED_RETRY_SECONDS,
    _db,
    _db_steps,
    _from_db,
    _retry_locked,
    _status,
    _to_db,
    _work_fields,
    columns_of,
    record_of,
)
from ._store_outbox import DjangoOutbox
from ._store_values import DjangoValues
from ._store_work import DjangoWork
from .models import WhatsAppLog, WhatsAppStatus, WhatsAppWindow

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["LOCKED_RETRY_SECONDS", "DjangoStore"]


class DjangoStore(DjangoWork, DjangoOutbox, DjangoValues):
    """The :class:`~eki_whatsapp.store.base.Store` protocol on the Django ORM.

    Needs ``eki_whatsapp_django`` in ``INSTALLED_APPS`` and its migrations applied
    (``python manage.py migrate``). Uses the ``default`` database unless ``using`` names another.
    """

    def __repr__(self) -> str:
        return f"DjangoStore(using={self.using!r})"

    # --- log ---------------------------------------------------------------------------------
    def _create_log(self, entry: LogEntry, *, work: bool = False, lease: Lease | None = None) -> WhatsAppLog:
        now = _to_db(utcnow())
        columns = columns_of(
            entry,
            skip=("id", "handling"),
            raw=rules.json_copy(entry.raw),
            timestamp=_to_db(entry.timestamp),
            created_at=now,
            updated_at=now,
            attempts=1 if lease is not None else entry.attempts,
            extra=rules.json_copy(dict(entry.extra)) or {},
        )
        return WhatsAppLog.objects.using(self.using).create(**columns, **_work_fields(work, lease))

    @_db
    def record_inbound(self, message: InboundMessage) -> bool:
        """Log an inbound message (``False`` if already logged) and refresh the user's window."""
        return self._record_inbound(message) is not None

    def _record_inbound(
        self, message: InboundMessage, *, work: bool = False, lease: Lease | None = None
    ) -> WhatsAppLog | None:
        try:
            with self._atomic():
                row = self._create_log(rules.inbound_entry(message), work=work, lease=lease)
                self._touch_window(*rules.window_key(message), message.timestamp)
        except IntegrityError:
            return None
        return row

    def _touch_window(self, provider: str, business: str, user: str, at: datetime) -> None:
        """rules.window_moves, atomic in the database: each UPDATE moves the window forward only."""
        when = _to_db(at)
        rows = WhatsAppWindow.objects.using(self.using).filter(
            provider=provider, business=business, user=user
        )
        if rows.filter(last_inbound_at__lt=when).update(last_inbound_at=when):
            return
        if not self._create_once(
            WhatsAppWindow, provider=provider, business=business, user=user, last_inbound_at=when
        ):
            # It exists: created concurrently (maybe older) or already newer.
            rows.filter(last_inbound_at__lt=when).update(last_inbound_at=when)

    def _create_once(self, model: type[models.Model], **fields: Any) -> bool:
        """Insert a row; ``False`` when its unique key is already there (the dedup). The savepoint
        keeps a caller's outer transaction usable after the refused insert."""
        try:
            with self._atomic():
                model._default_manager.using(self.using).create(**fields)
        except IntegrityError:
            return False
        return True

    @_db_steps
    def record_status(self, status: StatusUpdate) -> bool:
        """Keep the status (``False`` if already received) and merge it into the log row."""
        return self._record_status(status) is not None

    def _record_status(
        self, status: StatusUpdate, *, work: bool = False, lease: Lease | None = None
    ) -> WhatsAppStatus | None:
        record = rules.status_record(status)

        def create() -> WhatsAppStatus | None:
            try:
                with self._atomic():
                    return WhatsAppStatus.objects.using(self.using).create(
                        **columns_of(
                            record, timestamp=_to_db(record.timestamp), raw=rules.json_copy(record.raw)
                        ),
                        attempts=0 if lease is None else 1,
                        **_work_fields(work, lease),
                    )
            except IntegrityError:
                return None

        row = _retry_locked(self.using, create)
        if row is None:
            return None
        self._reconcile(status.provider, status.message_id)
        return row

    def _reconcile(self, provider: str, message_id: str) -> None:
        """Apply the received statuses to the log row now, and again once the transaction commits.

        Re-applying after the commit closes the race between a status and its outbound row
        written at the same moment: whichever commits last sees both.
        """
        _retry_locked(self.using, lambda: self._apply_statuses(provider, message_id))
        if transaction.get_connection(self.using).in_atomic_block:
            transaction.on_commit(lambda: self._apply_statuses(provider, message_id), using=self.using)

    def _apply_statuses(self, provider: str, message_id: str) -> None:
        """Merge every status received, in arrival order, into the row (rules.status_changes).

        Merging is idempotent, so merging again statuses already applied changes nothing.
        """
        with self._atomic():
            row = (
                WhatsAppLog.objects.using(self.using)
                .select_for_update()
                .filter(provider=provider, message_id=message_id)
                .first()
            )
            if row is None:
                return
            received = WhatsAppStatus.objects.using(self.using).filter(
                provider=provider, message_id=message_id
            )
            changes = rules.status_changes(row.status, row.category, map(_status, received.order_by("id")))
            if changes:
                changes["updated_at"] = _to_db(utcnow())
                WhatsAppLog.objects.using(self.using).filter(pk=row.pk).update(**changes)

    @_db
    def record_change(self, event: ChangeEvent) -> None:
        """Log another webhook notification (template status, account update, ...)."""
        self._create_log(rules.change_entry(event))

    # --- durable handling --------------------------------------------------------------------
    @_db_steps
    def record_work(self, event: Event, lease: Lease | None = None) -> str | None:
        """Record an event and that it must be handled, in one insert (rules: durable handling)."""
        row: models.Model | None
        if isinstance(event, InboundMessage):
            row = _retry_locked(self.using, lambda: self._record_inbound(event, work=True, lease=lease))
        elif isinstance(event, StatusUpdate):
            row = self._record_status(event, work=True, lease=lease)
        else:
            entry = rules.change_entry(event)
            row = _retry_locked(self.using, lambda: self._create_log(entry, work=True, lease=lease))
        return None if row is None else rules.work_id(rules.work_kind(event), int(row.pk))

    @_db_steps
    def log_outbound(self, entry: LogEntry) -> int:
        """Log a message the bot sent (or failed to send); earlier statuses are applied to it."""

        def create() -> WhatsAppLog:
            with self._atomic():
                return self._create_log(entry)

        row = _retry_locked(self.using, create)
        if entry.message_id is not None:
            self._reconcile(entry.provider, entry.message_id)
        return int(row.pk)

    @staticmethod
    def _entry(row: WhatsAppLog) -> LogEntry:
        return record_of(
            LogEntry,
            row,
            id=row.pk,
            direction="in" if row.direction == "in" else "out",
            timestamp=_from_db(row.timestamp),
            created_at=_from_db(row.created_at),
            updated_at=_from_db(row.updated_at),
            extra=row.extra or {},
        )

    @_db
    def get_message(self, provider: str, message_id: str) -> LogEntry | None:
        """The log row of a message by provider id."""
        row = WhatsAppLog.objects.using(self.using).filter(provider=provider, message_id=message_id).first()
        return None if row is None else self._entry(row)

    @_db
    def list_log(self, **query: Unpack[LogQuery]) -> list[LogEntry]:
        """Log rows, newest first."""
        rows = WhatsAppLog.objects.using(self.using).all()
        if (provider := query.get("provider")) is not None:
            rows = rows.filter(provider=provider)
        if (direction := query.get("direction")) is not None:
            rows = rows.filter(direction=direction)
        if (user := query.get("user")) is not None:
            rows = rows.filter(Q(direction="in", sender=user) | Q(direction="out", recipient=user))
        return [self._entry(r) for r in rows.order_by("-id")[: rules.log_limit(query)]]

    @_db
    def statuses(self, provider: str, message_id: str) -> list[StatusRecord]:
        """Every status received for a message, oldest first."""
        rows = WhatsAppStatus.objects.using(self.using).filter(provider=provider, message_id=message_id)
        return [_status(r) for r in rows.order_by("timestamp", "id")]

    # --- window ------------------------------------------------------------------------------
    @_db
    def last_inbound_at(self, provider: str, business: str | None, user: str) -> datetime | None:
        """When the user last wrote to that business number (any number when ``None``)."""
        rows = WhatsAppWindow.objects.using(self.using).filter(provider=provider, user=user)
        if business is not None:
            rows = rows.filter(business=business)
        latest = rows.order_by("-last_inbound_at").values_list("last_inbound_at", flat=True).first()
        return _from_db(latest)

    def close(self) -> None:
        """Stop the worker threads used from async code (Django owns the connections)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
