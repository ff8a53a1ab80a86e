"""How the PostgreSQL store reads and writes values (``timestamptz``, ``jsonb``) and the columns
its parts read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._sql import json_text
from .base import as_utc

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
