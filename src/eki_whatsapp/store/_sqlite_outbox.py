"""The SQLite store's outbox: sends kept until they go out (rules: "Outbox" in
:mod:`eki_whatsapp.store.rules`)."""

# ruff: noqa: S608  (column names come from this module's constants and rules, never from input)
from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from . import rules
from ._sql import OUTBOX_COLUMNS
from ._sqlite_values import _LOG_COLUMNS, SQLitePart, _epoch, _iso
from .base import Lease, LogEntry, OutboxItem, SendOutcome, utcnow

if TYPE_CHECKING:
    from typing_extensions import Unpack


# rules.send_claimable, in SQL.
_SEND_CLAIMABLE = (
    "state IN ('queued', 'unknown') AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
    "AND (lease_until IS NULL OR lease_until <= ?)"
)


class SQLiteOutbox(SQLitePart):
    """The outbox, for :class:`~eki_whatsapp.store.sqlite.SQLiteStore`."""

    def enqueue_send(self, item: OutboxItem, entry: LogEntry) -> str:
        now = _iso(utcnow())
        with self._tx() as db:
            row = self._insert_log(db, entry)
            cur = db.execute(
                "INSERT INTO outbox (state, recipient, message, options, correlation, provider, attempts, "
                "next_attempt_at, expires_at, lease_owner, lease_until, last_error, log_id, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    item.state,
                    item.to,
                    rules.dumps(dict(item.message)),
                    rules.dumps(dict(item.options)),
                    item.correlation,
                    item.provider,
                    item.attempts,
                    _epoch(item.next_attempt_at),
                    item.expires_at.timestamp(),
                    item.lease_owner,
                    _epoch(item.lease_until),
                    item.last_error,
                    row,
                    now,
                    now,
                ),
            )
            return rules.outbox_id(cur.lastrowid or 0)

    def claim_sends(self, lease: Lease, *, now: datetime, limit: int = 100) -> list[OutboxItem]:
        t = now.timestamp()
        with self._tx() as db:  # BEGIN IMMEDIATE: the select and the claim are one step
            keys = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM outbox WHERE {_SEND_CLAIMABLE} ORDER BY id LIMIT ?",
                    (t, t, limit),
                ).fetchall()
            ]
            if not keys:
                return []
            marks = ",".join("?" * len(keys))
            db.execute(
                f"UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1, updated_at=? "
                f"WHERE id IN ({marks})",
                (lease.owner, lease.until.timestamp(), _iso(utcnow()), *keys),
            )
            rows = db.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id IN ({marks}) ORDER BY id",
                keys,
            ).fetchall()
        return [self._outbox_item(r) for r in rows]

    def _rewrite(self, db: sqlite3.Connection, log_id: int, entry: LogEntry) -> None:
        """A send's log row, rewritten to its outcome (rules.rewritten_row)."""
        early: list[rules.StatusFacts] = []
        if entry.message_id is not None:
            early = [
                rules.StatusFacts(*r)
                for r in db.execute(
                    "SELECT status, error_code, error_message, category FROM status_log "
                    "WHERE provider=? AND message_id=? ORDER BY rowid",
                    (entry.provider, entry.message_id),
                ).fetchall()
            ]
        fields = rules.rewritten_row(entry, early)
        fields["raw"] = None if fields["raw"] is None else rules.dumps(fields["raw"])
        fields["extra"] = rules.dumps(fields["extra"]) if fields["extra"] else None
        fields["timestamp"] = _iso(fields["timestamp"])
        fields["updated_at"] = _iso(utcnow())
        # Column names come from rules.REWRITTEN_FIELDS, never from input.
        db.execute(
            f"UPDATE message_log SET {', '.join(f'{c}=?' for c in fields)} WHERE id=?",
            (*fields.values(), log_id),
        )

    def finish_send(self, outbox_id: str, owner: str, **outcome: Unpack[SendOutcome]) -> bool:
        key = rules.parse_outbox_id(outbox_id)
        if key is None:
            return False
        with self._tx() as db:
            cur = db.execute(
                "UPDATE outbox SET state=?, lease_owner=NULL, lease_until=NULL, next_attempt_at=?, "
                "last_error=?, correlation=?, provider=?, updated_at=? "
                "WHERE id=? AND lease_owner=? AND state IN ('queued', 'unknown')",
                (
                    outcome["state"],
                    _epoch(outcome.get("retry_at")),
                    outcome.get("error"),
                    outcome.get("correlation"),
                    outcome.get("provider"),
                    _iso(utcnow()),
                    key,
                    owner,
                ),
            )
            if not cur.rowcount:
                return False
            if (entry := outcome.get("entry")) is not None:
                row = db.execute("SELECT log_id FROM outbox WHERE id=?", (key,)).fetchone()
                if row is not None and row[0] is not None:
                    self._rewrite(db, row[0], entry)
            return True

    def resolve_send(self, provider: str, correlation: str, message_id: str) -> OutboxItem | None:
        with self._tx() as db:
            row = db.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE correlation=? AND provider=? "
                "AND state='unknown' ORDER BY id LIMIT 1",
                (correlation, provider),
            ).fetchone()
            if row is None:
                return None
            item = self._outbox_item(row)
            db.execute(
                "UPDATE outbox SET state='sent', lease_owner=NULL, lease_until=NULL, updated_at=? WHERE id=?",
                (_iso(utcnow()), row[0]),
            )
            if item.log_id is not None:
                logged = db.execute(
                    f"SELECT id, {_LOG_COLUMNS} FROM message_log WHERE id=?",
                    (item.log_id,),
                ).fetchone()
                if logged is not None:
                    entry = replace(
                        self._row(logged), provider=provider, message_id=message_id, status="accepted"
                    )
                    self._rewrite(db, item.log_id, entry)
            return item
