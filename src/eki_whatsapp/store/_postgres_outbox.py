"""The PostgreSQL store's outbox: sends kept until they go out (rules: "Outbox" in
:mod:`eki_whatsapp.store.rules`)."""

# ruff: noqa: S608  (column names come from this module's constants and rules, never from input)
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from . import rules
from ._postgres_values import _ROW_COLUMNS, PostgresPart, _dt, _json, _jsonb
from ._sql import OUTBOX_COLUMNS
from .base import Lease, LogEntry, OutboxItem, SendOutcome, as_utc, utcnow

if TYPE_CHECKING:
    import psycopg
    from typing_extensions import Unpack

# rules.send_claimable, in SQL.
_SEND_CLAIMABLE = (
    "state IN ('queued', 'unknown') AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s) "
    "AND (lease_until IS NULL OR lease_until <= %(now)s)"
)


class PostgresOutbox(PostgresPart):
    """The outbox, for :class:`~eki_whatsapp.store.postgres.PostgresStore`."""

    def enqueue_send(self, item: OutboxItem, entry: LogEntry) -> str:
        now = utcnow()
        with self._tx() as conn:
            log_id = self._insert_log(conn, entry)
            if not log_id:
                raise StoreError(
                    f"message {entry.provider}:{entry.message_id} is already in the log; a message id is "
                    "logged once"
                )
            row = conn.execute(
                "INSERT INTO outbox (state, recipient, message, options, correlation, provider, attempts, "
                "next_attempt_at, expires_at, lease_owner, lease_until, last_error, log_id, created_at, "
                "updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                (
                    item.state,
                    item.to,
                    _jsonb(item.message),
                    _jsonb(item.options),
                    item.correlation,
                    item.provider,
                    item.attempts,
                    _dt(item.next_attempt_at),
                    as_utc(item.expires_at),
                    item.lease_owner,
                    _dt(item.lease_until),
                    item.last_error,
                    log_id,
                    now,
                    now,
                ),
            ).fetchone()
            assert row is not None
            return rules.outbox_id(int(row[0]))

    def claim_sends(self, lease: Lease, *, now: datetime, limit: int = 100) -> list[OutboxItem]:
        # Sends another process is claiming right now are skipped, not waited for: each send
        # goes to one claimer (the subquery's row locks hold until this statement commits).
        rows = self._query(
            "UPDATE outbox SET lease_owner=%(owner)s, lease_until=%(until)s, attempts=attempts+1, "
            f"updated_at=%(at)s WHERE id IN (SELECT id FROM outbox WHERE {_SEND_CLAIMABLE} "
            f"ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING {OUTBOX_COLUMNS}",
            {
                "owner": lease.owner,
                "until": as_utc(lease.until),
                "at": utcnow(),
                "now": as_utc(now),
                "limit": limit,
            },
        )
        return sorted(
            (self._outbox_item(r) for r in rows), key=lambda item: rules.parse_outbox_id(item.id or "") or 0
        )

    def _rewrite(self, conn: psycopg.Connection[Any], log_id: int, entry: LogEntry) -> None:
        """A send's log row, rewritten to its outcome (rules.rewritten_row), the statuses already
        received for its message id merged in (under the message's lock, as ``record_status``)."""
        early: list[rules.StatusFacts] = []
        if entry.message_id is not None:
            self._lock_message(conn, entry.provider, entry.message_id)
            early = [
                rules.StatusFacts(*r)
                for r in conn.execute(
                    "SELECT status, error_code, error_message, category FROM status_log "
                    "WHERE provider=%s AND message_id=%s ORDER BY seq",
                    (entry.provider, entry.message_id),
                ).fetchall()
            ]
        fields = rules.rewritten_row(entry, early)
        fields["raw"] = _json(fields["raw"])
        fields["extra"] = _json(fields["extra"]) if fields["extra"] else None
        fields["timestamp"] = _dt(fields["timestamp"])
        fields["updated_at"] = utcnow()
        # Column names come from rules.REWRITTEN_FIELDS, never from input.
        conn.execute(
            f"UPDATE message_log SET {', '.join(f'{c}=%s' for c in fields)} WHERE id=%s".encode(),
            (*fields.values(), log_id),
        )

    def finish_send(self, outbox_id: str, owner: str, **outcome: Unpack[SendOutcome]) -> bool:
        key = rules.parse_outbox_id(outbox_id)
        if key is None:
            return False
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE outbox SET state=%s, lease_owner=NULL, lease_until=NULL, next_attempt_at=%s, "
                "last_error=%s, correlation=%s, provider=%s, updated_at=%s "
                "WHERE id=%s AND lease_owner=%s AND state IN ('queued', 'unknown') RETURNING log_id",
                (
                    outcome["state"],
                    _dt(outcome.get("retry_at")),
                    outcome.get("error"),
                    outcome.get("correlation"),
                    outcome.get("provider"),
                    utcnow(),
                    key,
                    owner,
                ),
            ).fetchone()
            if row is None:
                return False
            if (entry := outcome.get("entry")) is not None and row[0] is not None:
                self._rewrite(conn, int(row[0]), entry)
            return True

    def resolve_send(self, provider: str, correlation: str, message_id: str) -> OutboxItem | None:
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE correlation=%s AND provider=%s "
                "AND state='unknown' ORDER BY id LIMIT 1 FOR UPDATE",
                (correlation, provider),
            ).fetchone()
            if row is None:
                return None
            item = self._outbox_item(row)
            conn.execute(
                "UPDATE outbox SET state='sent', lease_owner=NULL, lease_until=NULL, updated_at=%s "
                "WHERE id=%s",
                (utcnow(), row[0]),
            )
            if item.log_id is not None:
                logged = conn.execute(
                    f"SELECT {_ROW_COLUMNS} FROM message_log WHERE id=%s",
                    (item.log_id,),
                ).fetchone()
                if logged is not None:
                    entry = replace(
                        self._row(logged), provider=provider, message_id=message_id, status="accepted"
                    )
                    self._rewrite(conn, item.log_id, entry)
            return item
