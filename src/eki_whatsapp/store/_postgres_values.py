"""How the PostgreSQL store reads and writes values (``timestamptz``, ``jsonb``), the columns its
parts read back, and :class:`PostgresPart`, what each part may call on the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._sql import SharedSQL, json_text
from .base import LogEntry, as_utc

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import psycopg

_LOG_COLUMNS = (
    "direction, provider, message_id, sender, recipient, type, text, status, error_code, "
    "error_message, raw, timestamp, created_at, updated_at, attempts, reason, category, extra"
)
#: A log row as read back: its id, the written columns, its handling state.
_ROW_COLUMNS = f"id, {_LOG_COLUMNS}, handling"
#: The work columns read back, the same for both tables (after the row).
_WORK_COLUMNS = "handling, attempts, lease_owner, lease_until, next_attempt_at, last_error"
_STATUS_COLUMNS = "provider, message_id, status, timestamp, error_code, error_message, raw, category"


def _dt(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _json(value: Any) -> Any:
    """A JSON value for a ``jsonb`` column (``None`` is SQL ``NULL``)."""
    return None if value is None else json_text(value)


#: A JSON value for a ``jsonb`` column (``None`` is JSON ``null``): its text, which the server
#: casts (one encoding, as :func:`.rules.json_copy` would read it back).
_jsonb = json_text


class PostgresPart(SharedSQL):
    """A part of :class:`~eki_whatsapp.store.postgres.PostgresStore` (durable handling, outbox,
    counters): the store's connections and log writes, which it calls, are the store's own."""

    MARK = "%s"

    if TYPE_CHECKING:

        def _conn(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...
        def _tx(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...
        def _execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any: ...
        def _insert_log(self, conn: psycopg.Connection[Any], entry: LogEntry) -> int: ...
        @staticmethod
        def _lock_message(conn: psycopg.Connection[Any], provider: str, message_id: str) -> None: ...
