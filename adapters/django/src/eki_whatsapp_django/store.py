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

import asyncio
import dataclasses
import functools
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from django.conf import settings as django_settings
from django.db import DatabaseError, DataError, IntegrityError, OperationalError, models, transaction
from django.db.models import F, Q

from eki_whatsapp.errors import StoreError, UnstorableValue
from eki_whatsapp.events import ChangeEvent, Event, InboundMessage, StatusUpdate
from eki_whatsapp.store import rules
from eki_whatsapp.store.base import (
    Lease,
    LedgerEntry,
    LogEntry,
    LogQuery,
    OutboxItem,
    SendOutcome,
    StatusRecord,
    UsageRecord,
    WorkItem,
    WorkOutcome,
    as_utc,
    utcnow,
)

from .models import (
    WhatsAppLedger,
    WhatsAppLog,
    WhatsAppMemory,
    WhatsAppOutbox,
    WhatsAppStatus,
    WhatsAppUsage,
    WhatsAppValue,
    WhatsAppWindow,
)
from .threads import DjangoExecutor

if TYPE_CHECKING:
    from typing_extensions import Unpack

P = ParamSpec("P")
_KEEP: Any = object()
R = TypeVar("R")


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


#: How long an operation waits out a database that another process is writing (SQLite) before it
#: fails. SQLite refuses a second writer at once when a transaction that has read must start
#: writing, whatever the connection's ``timeout``, so the whole operation is tried again.
LOCKED_RETRY_SECONDS = 10.0


def _is_locked(exc: DatabaseError) -> bool:
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()


def _retry_locked(using: str | None, operation: Callable[[], R]) -> R:
    """Run ``operation`` (one transaction) again while another writer holds the database, for up
    to :data:`LOCKED_RETRY_SECONDS`, with jittered backoff so that waiting writers do not collide."""
    deadline = time.monotonic() + LOCKED_RETRY_SECONDS
    delay = 0.02
    while True:
        try:
            return operation()
        except OperationalError as exc:
            # Inside the caller's own transaction a retry cannot help: that transaction is broken.
            outer = transaction.get_connection(using).in_atomic_block
            if not _is_locked(exc) or outer or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


def _offloaded(
    method: Callable[Concatenate[DjangoStore, P], R], retry: bool
) -> Callable[Concatenate[DjangoStore, P], R]:
    def wrapper(self: DjangoStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        def run() -> R:
            if retry:
                return _retry_locked(self.using, lambda: method(self, *args, **kwargs))
            return method(self, *args, **kwargs)

        try:
            if _in_event_loop():
                return self._offload().submit(run).result()
            return run()
        except DataError as exc:  # PostgreSQL: NUL in text, \u0000 or Infinity in JSON, bigint overflow
            raise UnstorableValue(f"DjangoStore.{method.__name__} cannot hold a value: {exc}") from exc
        except DatabaseError as exc:
            raise StoreError(f"DjangoStore.{method.__name__} failed: {exc}") from exc
        except (UnicodeEncodeError, OverflowError) as exc:  # SQLite: a lone surrogate, a number > 2**63
            raise UnstorableValue(f"DjangoStore.{method.__name__} cannot hold a value: {exc}") from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


def _db(method: Callable[Concatenate[DjangoStore, P], R]) -> Callable[Concatenate[DjangoStore, P], R]:
    """Run ``method`` in a worker thread when called from an event loop, again while the database
    is locked by another writer (it must be one transaction); other database failures become
    :class:`~eki_whatsapp.StoreError` (the webhook then answers 503 and the provider retries)."""
    return _offloaded(method, retry=True)


def _db_steps(method: Callable[Concatenate[DjangoStore, P], R]) -> Callable[Concatenate[DjangoStore, P], R]:
    """:func:`_db` for a method of several transactions: each step retries on its own (running the
    whole method again would repeat the steps that were already committed)."""
    return _offloaded(method, retry=False)


def _to_db(value: datetime | None) -> datetime | None:
    """Aware UTC with ``USE_TZ``; naive UTC without (backends refuse aware values then)."""
    if value is None:
        return None
    value = as_utc(value)
    return value if django_settings.USE_TZ else value.replace(tzinfo=None)


def _from_db(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _status(row: WhatsAppStatus) -> StatusRecord:
    return StatusRecord(
        provider=row.provider,
        message_id=row.message_id,
        status=row.status,
        timestamp=_from_db(row.timestamp) or utcnow(),
        error_code=row.error_code,
        error_message=row.error_message,
        raw=row.raw,
        category=row.category,
    )


def _work_fields(work: bool, lease: Lease | None) -> dict[str, Any]:
    """The handling columns of a row written with its work (rules: durable handling)."""
    if not work:
        return {}
    return {
        "handling": "pending",
        "lease_owner": None if lease is None else lease.owner,
        "lease_until": None if lease is None else _to_db(lease.until),
    }


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class DjangoStore:
    """The :class:`~eki_whatsapp.store.base.Store` protocol on the Django ORM.

    Needs ``eki_whatsapp_django`` in ``INSTALLED_APPS`` and its migrations applied
    (``python manage.py migrate``). Uses the ``default`` database unless ``using`` names another.
    """

    def __init__(self, using: str | None = None) -> None:
        self.using = using
        self._executor: DjangoExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DjangoStore(using={self.using!r})"

    def _offload(self) -> DjangoExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = DjangoExecutor(max_workers=4, thread_name_prefix="eki-whatsapp-db")
            return self._executor

    def _atomic(self) -> transaction.Atomic:
        return transaction.atomic(using=self.using)

    # --- log ---------------------------------------------------------------------------------
    def _create_log(self, entry: LogEntry, *, work: bool = False, lease: Lease | None = None) -> WhatsAppLog:
        now = _to_db(utcnow())
        return WhatsAppLog.objects.using(self.using).create(
            direction=entry.direction,
            provider=entry.provider,
            message_id=entry.message_id,
            sender=entry.sender,
            recipient=entry.recipient,
            type=entry.type,
            text=entry.text,
            status=entry.status,
            error_code=entry.error_code,
            error_message=entry.error_message,
            raw=rules.json_copy(entry.raw),
            timestamp=_to_db(entry.timestamp),
            created_at=now,
            updated_at=now,
            attempts=1 if lease is not None else entry.attempts,
            reason=entry.reason,
            category=entry.category,
            extra=rules.json_copy(dict(entry.extra)) or {},
            **_work_fields(work, lease),
        )

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
                        provider=record.provider,
                        message_id=record.message_id,
                        status=record.status,
                        timestamp=_to_db(record.timestamp),
                        error_code=record.error_code,
                        error_message=record.error_message,
                        category=record.category,
                        raw=rules.json_copy(record.raw),
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

    def _rows(self, work_id: str) -> tuple[models.QuerySet[Any], int] | None:
        ref = rules.parse_work_id(work_id)
        if ref is None:
            return None
        model: type[models.Model] = WhatsAppStatus if ref[0] == "s" else WhatsAppLog
        return model._default_manager.using(self.using).filter(pk=ref[1]), ref[1]

    def _item(self, row: WhatsAppLog | WhatsAppStatus) -> WorkItem:
        if isinstance(row, WhatsAppStatus):
            entry, status, kind = None, _status(row), "status"
            created = row.timestamp
        else:
            entry, status = self._entry(row), None
            kind = rules.entry_work_kind(entry)
            created = row.created_at
        return WorkItem(
            id=rules.work_id(kind, int(row.pk)),  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            state=row.handling,  # type: ignore[arg-type]
            attempts=row.attempts,
            created_at=_from_db(created) or utcnow(),
            lease_owner=row.lease_owner,
            lease_until=_from_db(row.lease_until),
            next_attempt_at=_from_db(row.next_attempt_at),
            last_error=row.last_error,
            entry=entry,
            status=status,
        )

    @staticmethod
    def _claimable(now: datetime) -> Q:
        """rules.claimable as a filter."""
        when = _to_db(now)
        return (
            Q(handling__in=rules.OPEN_STATES)
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=when))
            & (Q(lease_until__isnull=True) | Q(lease_until__lte=when))
        )

    @_db
    def claim_work(self, work_id: str, lease: Lease, *, now: datetime) -> WorkItem | None:
        """Claim one piece of work: one conditional UPDATE, so two claimers cannot both win."""
        found = self._rows(work_id)
        if found is None:
            return None
        rows, _ = found
        claimed = rows.filter(self._claimable(now)).update(
            lease_owner=lease.owner, lease_until=_to_db(lease.until), attempts=F("attempts") + 1
        )
        return self._item(rows.get()) if claimed else None

    @_db
    def claim_due(
        self, lease: Lease, *, now: datetime, max_attempts: int, limit: int = 100
    ) -> list[WorkItem]:
        """Claim what is due, row by row with the same conditional UPDATE as ``claim_work``."""
        claimed: list[WorkItem] = []
        for model in (WhatsAppLog, WhatsAppStatus):
            due = model._default_manager.using(self.using).filter(self._claimable(now)).order_by("pk")
            for pk, attempts, until in due.values_list("pk", "attempts", "lease_until")[:limit]:
                rows = model._default_manager.using(self.using).filter(pk=pk).filter(self._claimable(now))
                if rules.dies(attempts, max_attempts, _from_db(until), now):
                    rows.update(
                        handling="dead",
                        lease_owner=None,
                        lease_until=None,
                        last_error=rules.died_error(attempts),
                    )
                elif rows.update(
                    lease_owner=lease.owner, lease_until=_to_db(lease.until), attempts=F("attempts") + 1
                ):
                    claimed.append(self._item(rows.model._default_manager.using(self.using).get(pk=pk)))
        claimed.sort(key=lambda w: w.created_at)
        return claimed[:limit]

    @_db
    def finish_work(self, work_id: str, owner: str, **outcome: Unpack[WorkOutcome]) -> bool:
        """End ``owner``'s attempt (only while it still holds the lease)."""
        found = self._rows(work_id)
        if found is None:
            return False
        state = rules.finished_state(outcome)
        return bool(
            found[0]
            .filter(lease_owner=owner, handling__in=rules.OPEN_STATES)
            .update(
                handling=state,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=_to_db(outcome.get("retry_at")),
                last_error=outcome.get("error"),
            )
        )

    @_db
    def get_work(self, work_id: str) -> WorkItem | None:
        """One piece of work by id."""
        found = self._rows(work_id)
        if found is None:
            return None
        row = found[0].exclude(handling__isnull=True).first()
        return None if row is None else self._item(row)

    @_db
    def pending_work(self, *, limit: int = 100) -> list[WorkItem]:
        """Work not handled yet, oldest first."""
        items: list[WorkItem] = []
        for model in (WhatsAppLog, WhatsAppStatus):
            rows = model._default_manager.using(self.using).filter(handling__in=("pending", "failed", "dead"))
            items.extend(self._item(r) for r in rows.order_by("pk")[:limit])
        items.sort(key=lambda w: w.created_at)
        return items[:limit]

    @_db
    def retry_work(self, work_id: str | None = None) -> int:
        """Make dead or failed work pending again (one, or all)."""
        reset: dict[str, Any] = {
            "handling": "pending",
            "attempts": 0,
            "lease_owner": None,
            "lease_until": None,
            "next_attempt_at": None,
        }
        if work_id is None:
            return sum(
                model._default_manager.using(self.using)
                .filter(handling__in=("failed", "dead"))
                .update(**reset)
                for model in (WhatsAppLog, WhatsAppStatus)
            )
        found = self._rows(work_id)
        if found is None:
            return 0
        return int(found[0].filter(handling__in=("pending", "failed", "dead")).update(**reset))

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
        return LogEntry(
            id=row.pk,
            direction="in" if row.direction == "in" else "out",
            provider=row.provider,
            message_id=row.message_id,
            sender=row.sender,
            recipient=row.recipient,
            type=row.type,
            text=row.text,
            status=row.status,
            error_code=row.error_code,
            error_message=row.error_message,
            raw=row.raw,
            timestamp=_from_db(row.timestamp),
            created_at=_from_db(row.created_at),
            updated_at=_from_db(row.updated_at),
            attempts=row.attempts,
            reason=row.reason,
            category=row.category,
            extra=row.extra or {},
            handling=row.handling,
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

    # --- memory / usage ------------------------------------------------------------------------
    @_db
    def load_memory(self, key: str) -> list[dict[str, Any]]:
        """The stored memory items of ``key`` (empty when none)."""
        items = (
            WhatsAppMemory.objects.using(self.using).filter(key=key).values_list("items", flat=True).first()
        )
        return list(items) if items else []

    @_db
    def save_memory(self, key: str, items: list[dict[str, Any]]) -> None:
        """Replace the memory items of ``key``."""
        WhatsAppMemory.objects.using(self.using).update_or_create(
            key=key, defaults={"items": rules.json_copy(items), "updated_at": _to_db(utcnow())}
        )

    @_db
    def record_usage(self, record: UsageRecord) -> None:
        """Add the model usage of one call."""
        WhatsAppUsage.objects.using(self.using).create(
            user=record.user,
            model=record.model,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            cached_tokens=record.cached_tokens,
            cost=None if record.cost is None else str(record.cost),
            at=_to_db(record.at),
            turn_id=record.turn_id,
            provider=record.provider,
        )

    @_db
    def usage(self, *, user: str | None = None, since: datetime | None = None) -> list[UsageRecord]:
        """Usage records, oldest first, of a user and/or since a moment."""
        rows = WhatsAppUsage.objects.using(self.using).all()
        if user is not None:
            rows = rows.filter(user=user)
        if since is not None:
            rows = rows.filter(at__gte=_to_db(since))
        return [
            UsageRecord(
                user=r.user,
                model=r.model,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                cached_tokens=r.cached_tokens,
                cost=_decimal(r.cost),
                at=_from_db(r.at) or utcnow(),
                turn_id=r.turn_id,
                provider=r.provider,
            )
            for r in rows.order_by("id")
        ]

    # --- ledger ------------------------------------------------------------------------------
    @_db
    def add_ledger(self, entry: LedgerEntry) -> bool:
        """Add a ledger entry; ``False`` if (provider, message id, source) is already there."""
        return self._create_once(
            WhatsAppLedger,
            provider=entry.provider,
            message_id=entry.message_id,
            source=entry.source,
            category=entry.category,
            at=_to_db(entry.at),
            month=entry.month,
            user=entry.user,
            market=entry.market,
            pricing_model=entry.pricing_model,
            billable=entry.billable,
            amount=None if entry.amount is None else str(entry.amount),
            currency=entry.currency,
            note=entry.note,
        )

    @_db
    def ledger(self, *, month: str | None = None) -> list[LedgerEntry]:
        """Entries of a month (``"2026-11"``), or all, oldest first."""
        rows = WhatsAppLedger.objects.using(self.using).all()
        if month is not None:
            rows = rows.filter(month=month)
        return [
            LedgerEntry(
                provider=r.provider,
                message_id=r.message_id,
                source=r.source,
                category=r.category,
                at=_from_db(r.at) or utcnow(),
                user=r.user,
                market=r.market,
                pricing_model=r.pricing_model,
                billable=r.billable,
                amount=_decimal(r.amount),
                currency=r.currency,
                note=r.note,
            )
            for r in rows.order_by("at", "id")
        ]

    # --- kv ----------------------------------------------------------------------------------
    @_db
    def get_value(self, namespace: str, key: str) -> Any:
        """The JSON value stored under ``(namespace, key)``, or ``None``."""
        return (
            WhatsAppValue.objects.using(self.using)
            .filter(namespace=namespace, key=key)
            .values_list("value", flat=True)
            .first()
        )

    @_db
    def set_value(self, namespace: str, key: str, value: Any) -> None:
        """Store a JSON value under ``(namespace, key)``."""
        WhatsAppValue.objects.using(self.using).update_or_create(
            namespace=namespace, key=key, defaults={"value": rules.json_copy(value)}
        )

    def _update_value(self, namespace: str, key: str, change: Callable[[Any], Any]) -> Any:
        """Replace the value with ``change(current)`` while its row is locked (``_KEEP``: leave it);
        returns what ``change`` returned. An absent row is created, or, when another process just
        created it, locked and read again."""
        values = WhatsAppValue.objects.using(self.using)
        while True:
            with self._atomic():
                row = values.select_for_update().filter(namespace=namespace, key=key).first()
                new = change(None if row is None else row.value)
                if new is _KEEP:
                    return new
                if row is not None:
                    values.filter(pk=row.pk).update(value=rules.json_copy(new))
                    return new
                try:
                    with self._atomic():
                        values.create(namespace=namespace, key=key, value=rules.json_copy(new))
                except IntegrityError:
                    continue
                return new

    @_db
    def increment(self, namespace: str, key: str, amount: int = 1, *, limit: int | None = None) -> int | None:
        """Add ``amount`` to the counter (``None`` and no change when that would pass ``limit``)."""

        def change(current: Any) -> Any:
            after = rules.counter_after(current, amount, limit)
            return _KEEP if after is None else after

        result = self._update_value(namespace, key, change)
        return None if result is _KEEP else int(result)

    @_db
    def compare_and_set(self, namespace: str, key: str, expected: Any, value: Any) -> bool:
        """Store ``value`` only if the stored value is ``expected`` (``None``: absent)."""
        return (
            self._update_value(
                namespace, key, lambda current: value if rules.same_value(current, expected) else _KEEP
            )
            is not _KEEP
        )

    # --- outbox ------------------------------------------------------------------------------
    @staticmethod
    def _send(row: WhatsAppOutbox) -> OutboxItem:
        return OutboxItem(
            id=rules.outbox_id(int(row.pk)),
            state=row.state,  # type: ignore[arg-type]
            to=row.recipient,
            message=row.message,
            options=row.options or {},
            correlation=row.correlation,
            provider=row.provider,
            attempts=row.attempts,
            next_attempt_at=_from_db(row.next_attempt_at),
            expires_at=_from_db(row.expires_at) or utcnow(),
            lease_owner=row.lease_owner,
            lease_until=_from_db(row.lease_until),
            last_error=row.last_error,
            log_id=row.log_id,
            created_at=_from_db(row.created_at),
            updated_at=_from_db(row.updated_at),
        )

    def _sends(self) -> models.QuerySet[WhatsAppOutbox]:
        return WhatsAppOutbox.objects.using(self.using)

    @_db
    def enqueue_send(self, item: OutboxItem, entry: LogEntry) -> str:
        """The send's log row and the send, in one transaction."""
        now = _to_db(utcnow())
        with self._atomic():
            log = self._create_log(entry)
            row = self._sends().create(
                state=item.state,
                recipient=item.to,
                message=rules.json_copy(dict(item.message)),
                options=rules.json_copy(dict(item.options)) or {},
                correlation=item.correlation,
                provider=item.provider,
                attempts=item.attempts,
                next_attempt_at=_to_db(item.next_attempt_at),
                expires_at=_to_db(item.expires_at),
                lease_owner=item.lease_owner,
                lease_until=_to_db(item.lease_until),
                last_error=item.last_error,
                log_id=log.pk,
                created_at=now,
                updated_at=now,
            )
        return rules.outbox_id(int(row.pk))

    @staticmethod
    def _send_claimable(now: datetime) -> Q:
        """rules.send_claimable as a filter."""
        when = _to_db(now)
        return (
            Q(state__in=rules.OUTBOX_OPEN)
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=when))
            & (Q(lease_until__isnull=True) | Q(lease_until__lte=when))
        )

    @_db
    def claim_sends(self, lease: Lease, *, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Claim what is due, row by row with one conditional UPDATE each (one claimer wins)."""
        claimed: list[OutboxItem] = []
        due = self._sends().filter(self._send_claimable(now)).order_by("pk")
        for pk in due.values_list("pk", flat=True)[:limit]:
            rows = self._sends().filter(pk=pk).filter(self._send_claimable(now))
            if rows.update(
                lease_owner=lease.owner,
                lease_until=_to_db(lease.until),
                attempts=F("attempts") + 1,
                updated_at=_to_db(utcnow()),
            ):
                claimed.append(self._send(self._sends().get(pk=pk)))
        return claimed

    def _rewrite(self, log_id: int, entry: LogEntry) -> None:
        """A send's log row, rewritten to its outcome (rules.rewritten_row)."""
        early: list[StatusRecord] = []
        if entry.message_id is not None:
            received = WhatsAppStatus.objects.using(self.using).filter(
                provider=entry.provider, message_id=entry.message_id
            )
            early = [_status(r) for r in received.order_by("id")]
        fields = rules.rewritten_row(entry, early)
        fields["raw"] = rules.json_copy(fields["raw"])
        fields["extra"] = rules.json_copy(fields["extra"]) or {}
        fields["timestamp"] = _to_db(fields["timestamp"])
        fields["updated_at"] = _to_db(utcnow())
        WhatsAppLog.objects.using(self.using).filter(pk=log_id).update(**fields)

    @_db
    def finish_send(self, outbox_id: str, owner: str, **outcome: Unpack[SendOutcome]) -> bool:
        """End ``owner``'s attempt (only while it holds the send) and rewrite its log row."""
        key = rules.parse_outbox_id(outbox_id)
        if key is None:
            return False
        with self._atomic():
            changed = (
                self._sends()
                .filter(pk=key, lease_owner=owner, state__in=rules.OUTBOX_OPEN)
                .update(
                    state=outcome["state"],
                    lease_owner=None,
                    lease_until=None,
                    next_attempt_at=_to_db(outcome.get("retry_at")),
                    last_error=outcome.get("error"),
                    correlation=outcome.get("correlation"),
                    provider=outcome.get("provider"),
                    updated_at=_to_db(utcnow()),
                )
            )
            if not changed:
                return False
            log_id = self._sends().filter(pk=key).values_list("log_id", flat=True).first()
            if (entry := outcome.get("entry")) is not None and log_id is not None:
                self._rewrite(log_id, entry)
        return True

    @_db
    def resolve_send(self, provider: str, correlation: str, message_id: str) -> OutboxItem | None:
        """The unknown send with that key is sent; its log row gets the message id."""
        with self._atomic():
            row = (
                self._sends()
                .select_for_update()
                .filter(correlation=correlation, provider=provider, state="unknown")
                .order_by("pk")
                .first()
            )
            if row is None:
                return None
            item = self._send(row)
            self._sends().filter(pk=row.pk, state="unknown").update(
                state="sent", lease_owner=None, lease_until=None, updated_at=_to_db(utcnow())
            )
            logged = WhatsAppLog.objects.using(self.using).filter(pk=row.log_id).first()
            if logged is not None:
                entry = self._entry(logged)
                entry = dataclasses.replace(
                    entry, provider=provider, message_id=message_id, status="accepted"
                )
                self._rewrite(int(logged.pk), entry)
        return item

    @_db
    def get_send(self, outbox_id: str) -> OutboxItem | None:
        """One send by id."""
        key = rules.parse_outbox_id(outbox_id)
        row = None if key is None else self._sends().filter(pk=key).first()
        return None if row is None else self._send(row)

    @_db
    def pending_sends(self, *, limit: int = 100) -> list[OutboxItem]:
        """Sends not final yet, oldest first."""
        rows = self._sends().filter(state__in=rules.OUTBOX_OPEN).order_by("pk")[:limit]
        return [self._send(r) for r in rows]

    @_db
    def retry_send(self, outbox_id: str | None = None, *, expires_at: datetime) -> int:
        """Make sends due now; failed and expired ones are queued again until ``expires_at``."""
        rows = self._sends().filter(state__in=rules.OUTBOX_RETRYABLE)
        if outbox_id is not None:
            key = rules.parse_outbox_id(outbox_id)
            if key is None:
                return 0
            rows = rows.filter(pk=key)
        reset: dict[str, Any] = {
            "attempts": 0,
            "next_attempt_at": None,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": _to_db(utcnow()),
        }
        with self._atomic():
            # The waiting ones first: the ended ones become waiting ones on the next line.
            waiting: int = rows.filter(state__in=rules.OUTBOX_OPEN).update(**reset)
            reopened: int = rows.exclude(state__in=rules.OUTBOX_OPEN).update(
                state="queued", expires_at=_to_db(expires_at), **reset
            )
            return waiting + reopened

    def close(self) -> None:
        """Stop the worker threads used from async code (Django owns the connections)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
