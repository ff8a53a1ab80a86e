"""What the parts of the Django store share: running a call off the event loop and again while
SQLite is locked, database errors as :class:`~eki_whatsapp.StoreError`, time and value conversions,
and :class:`StoreBase`."""

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
from django.db import DatabaseError, DataError, OperationalError, models, transaction
from django.db.models import Q

from eki_whatsapp.errors import StoreError, UnstorableValue
from eki_whatsapp.store.base import (
    Lease,
    LogEntry,
    StatusRecord,
    as_utc,
    utcnow,
)

from .models import (
    WhatsAppLog,
    WhatsAppStatus,
)
from .threads import DjangoExecutor

if TYPE_CHECKING:
    pass

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
#: The store a decorated method belongs to (any part of DjangoStore).
S = TypeVar("S", bound="StoreBase")


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


def _offloaded(method: Callable[Concatenate[S, P], R], retry: bool) -> Callable[Concatenate[S, P], R]:
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        def run() -> R:
            if retry:
                return _retry_locked(self.using, lambda: method(self, *args, **kwargs))
            return method(self, *args, **kwargs)

        try:
            if _in_event_loop():
                return self._offload().submit(run).result()
            return run()
        except DataError as exc:  # PostgreSQL: NUL in text, \u0000 or Infinity in JSON, bigint overflow
            raise UnstorableValue(f"StoreBase.{method.__name__} cannot hold a value: {exc}") from exc
        except DatabaseError as exc:
            raise StoreError(f"StoreBase.{method.__name__} failed: {exc}") from exc
        except (UnicodeEncodeError, OverflowError) as exc:  # SQLite: a lone surrogate, a number > 2**63
            raise UnstorableValue(f"StoreBase.{method.__name__} cannot hold a value: {exc}") from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


def _db(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run ``method`` in a worker thread when called from an event loop, again while the database
    is locked by another writer (it must be one transaction); other database failures become
    :class:`~eki_whatsapp.StoreError` (the webhook then answers 503 and the provider retries)."""
    return _offloaded(method, retry=True)


def _db_steps(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """:func:`_db` for a method of several transactions: each step retries on its own (running the
    whole method again would repeat the steps that were already committed)."""
    return _offloaded(method, retry=False)


def _to_db(value: datetime | None) -> datetime | None:
    """Aware UTC with ``USE_TZ``; naive UTC without (backends refuse aware values then)."""
    if value is None:
        return None
    value = as_utc(value)
    return value if django_settings.USE_TZ else value.replace(tzinfo=None)


def _due(now: datetime) -> Q:
    """Due and not leased at ``now`` (the time half of rules.claimable and rules.send_claimable)."""
    when = _to_db(now)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=when)
    return due & (Q(lease_until__isnull=True) | Q(lease_until__lte=when))


def _from_db(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def record_of(cls: type[T], row: models.Model, **values: Any) -> T:
    """A record (``LogEntry``, ``StatusRecord``...) from an ORM row whose columns have the
    record's field names; ``values`` are the fields that need more than a copy (times, ids)."""
    copied = {f.name: getattr(row, f.name) for f in dataclasses.fields(cls) if f.name not in values}  # type: ignore[arg-type]
    return cls(**copied, **values)


def columns_of(record: Any, *, skip: tuple[str, ...] = (), **values: Any) -> dict[str, Any]:
    """The columns of an ORM row for ``record`` (fields of the same names, but those in
    ``skip``); ``values`` are the columns that need more than a copy."""
    skipped = set(skip) | values.keys()
    copied = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name not in skipped}
    return {**copied, **values}


def _status(row: WhatsAppStatus) -> StatusRecord:
    return record_of(StatusRecord, row, timestamp=_from_db(row.timestamp) or utcnow())


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


class StoreBase:
    """What every part of :class:`~eki_whatsapp_django.store.DjangoStore` stands on: the database
    alias, the worker threads used from async code, transactions."""

    def __init__(self, using: str | None = None) -> None:
        self.using = using
        self._executor: DjangoExecutor | None = None
        self._lock = threading.Lock()

    def _offload(self) -> DjangoExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = DjangoExecutor(max_workers=4, thread_name_prefix="eki-whatsapp-db")
            return self._executor

    def _atomic(self) -> transaction.Atomic:
        return transaction.atomic(using=self.using)

    if TYPE_CHECKING:  # the log's writes and reads, which the work and outbox parts use

        def _create_log(
            self, entry: LogEntry, *, work: bool = False, lease: Lease | None = None
        ) -> WhatsAppLog: ...
        def _create_once(self, model: type[models.Model], **fields: Any) -> bool: ...
        @staticmethod
        def _entry(row: WhatsAppLog) -> LogEntry: ...
        def _reconcile(self, provider: str, message_id: str) -> None: ...
