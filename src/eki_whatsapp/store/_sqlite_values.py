"""How the SQLite store keeps values: times as ISO text, lease and retry times as epoch seconds
(compared in SQL), JSON as text; the message log's columns; and :class:`SQLitePart`, what each
part may call on the store."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._sql import SharedSQL
from .base import LogEntry, as_utc

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

_LOG_COLUMNS = (
    "direction, provider, message_id, sender, recipient, type, text, status, error_code, "
    "error_message, raw, timestamp, created_at, updated_at, attempts, reason, category, extra, handling"
)
_INSERT_LOG = (
    f"INTO message_log ({_LOG_COLUMNS}, lease_owner, lease_until) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _epoch(value: datetime | None) -> float | None:
    """Lease and retry times as seconds since the epoch: compared in SQL, whatever the format."""
    return None if value is None else value.timestamp()


def _from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


class SQLitePart(SharedSQL):
    """A part of :class:`~eki_whatsapp.store.sqlite.SQLiteStore` (durable handling, outbox,
    counters): the store's connection, lock and log writes, which it uses, are the store's own."""

    if TYPE_CHECKING:
        _db: sqlite3.Connection
        _lock: threading.RLock

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor: ...
        def _insert_log(self, db: sqlite3.Connection, entry: LogEntry) -> int: ...
