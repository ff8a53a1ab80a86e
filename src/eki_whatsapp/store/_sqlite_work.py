"""The SQLite store's durable handling: claiming work (leases), finishing it (group commit),
listing and retrying it (rules: "Durable handling" in :mod:`eki_whatsapp.store.rules`)."""

# ruff: noqa: S608  (table and column names come from this module's constants, never from input)
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import rules
from ._sqlite_values import _LOG_COLUMNS, SQLitePart, _dt, _epoch, _from_epoch
from .base import Lease, LogEntry, StatusRecord, WorkItem, WorkOutcome, utcnow

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: The work columns read back, the same for both tables (after the row's id and created time).
_WORK_COLUMNS = "handling, attempts, lease_owner, lease_until, next_attempt_at, last_error"
_TABLES = {"m": "message_log", "s": "status_log"}
_KEYS = {"m": "id", "s": "rowid"}
# rules.claimable, in SQL.
_CLAIMABLE = (
    "handling IN ('pending', 'failed') AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
    "AND (lease_until IS NULL OR lease_until <= ?)"
)


class _Outcome:
    """One queued ``finish_work`` update, and what became of it once committed."""

    __slots__ = ("changed", "error", "params", "sql")

    def __init__(self, sql: str, params: tuple[Any, ...], changed: bool | None = None) -> None:
        self.sql = sql
        self.params = params
        self.changed = changed
        self.error: BaseException | None = None


class SQLiteWork(SQLitePart):
    """Durable handling, for :class:`~eki_whatsapp.store.sqlite.SQLiteStore`."""

    if TYPE_CHECKING:
        _outcomes: list[_Outcome]
        _outcomes_lock: threading.Lock

    def _work_items(self, db: sqlite3.Connection, table: str, keys: list[int]) -> list[WorkItem]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        if table == "m":
            rows = db.execute(
                f"SELECT id, {_LOG_COLUMNS}, {_WORK_COLUMNS} FROM message_log "
                f"WHERE id IN ({marks}) ORDER BY id",
                keys,
            ).fetchall()
            return [self._work_item("m", r[0], self._row(r[:20]), None, r[13], r[20:]) for r in rows]
        rows = db.execute(
            "SELECT rowid, provider, message_id, status, timestamp, error_code, error_message, raw, "
            f"category, {_WORK_COLUMNS} FROM status_log WHERE rowid IN ({marks}) ORDER BY rowid",
            keys,
        ).fetchall()
        return [self._work_item("s", r[0], None, self._status(r[1:9]), r[4], r[9:]) for r in rows]

    @staticmethod
    def _work_item(
        table: str,
        key: int,
        entry: LogEntry | None,
        status: StatusRecord | None,
        created: str,
        work: Sequence[Any],
    ) -> WorkItem:
        handling = (*work[:3], _from_epoch(work[3]), _from_epoch(work[4]), work[5])
        return rules.work_item(f"{table}{key}", entry, status, _dt(created) or utcnow(), handling)

    def claim_work(self, work_id: str, lease: Lease, *, now: datetime) -> WorkItem | None:
        ref = rules.parse_work_id(work_id)
        if ref is None:
            return None
        table, key = ref
        t = now.timestamp()
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE {_TABLES[table]} SET lease_owner=?, lease_until=?, attempts=attempts+1 "
                f"WHERE {_KEYS[table]}=? AND {_CLAIMABLE}",
                (lease.owner, lease.until.timestamp(), key, t, t),
            )
            if not cur.rowcount:
                return None
            return self._work_items(db, table, [key])[0]

    def claim_due(
        self, lease: Lease, *, now: datetime, max_attempts: int, limit: int = 100
    ) -> list[WorkItem]:
        t = now.timestamp()
        claimed: list[WorkItem] = []
        with self._tx() as db:
            for table in ("m", "s"):
                name, key = _TABLES[table], _KEYS[table]
                rows = db.execute(
                    f"SELECT {key}, attempts, lease_until FROM {name} "
                    f"WHERE handling IN ('pending', 'failed', 'dead') AND {_CLAIMABLE} "
                    f"ORDER BY {key} LIMIT ?",
                    (t, t, limit),
                ).fetchall()
                dead = [r for r in rows if rules.dies(r[1], max_attempts, _from_epoch(r[2]), now)]
                for r in dead:
                    db.execute(
                        f"UPDATE {name} SET handling='dead', lease_owner=NULL, lease_until=NULL, "
                        f"last_error=? WHERE {key}=?",
                        (rules.died_error(r[1]), r[0]),
                    )
                due = [r[0] for r in rows if r not in dead]
                if due:
                    db.execute(
                        f"UPDATE {name} SET lease_owner=?, lease_until=?, attempts=attempts+1 "
                        f"WHERE {key} IN ({','.join('?' * len(due))})",
                        (lease.owner, lease.until.timestamp(), *due),
                    )
                    claimed.extend(self._work_items(db, table, due))
        claimed.sort(key=lambda w: w.created_at)
        return claimed[:limit]

    def finish_work(self, work_id: str, owner: str, **outcome: Unpack[WorkOutcome]) -> bool:
        return self.finish_works([(work_id, owner, outcome)])[0]

    def finish_works(self, outcomes: Sequence[tuple[str, str, WorkOutcome]]) -> list[bool]:
        """:meth:`finish_work` for several attempts (``(work_id, owner, outcome)``), committed
        together; whether each changed its row."""
        updates: list[_Outcome] = []
        for work_id, owner, outcome in outcomes:
            ref = rules.parse_work_id(work_id)
            if ref is None:
                updates.append(_Outcome("", (), changed=False))
                continue
            table, key = ref
            updates.append(
                _Outcome(
                    f"UPDATE {_TABLES[table]} SET handling=?, lease_owner=NULL, lease_until=NULL, "
                    f"next_attempt_at=?, last_error=? WHERE {_KEYS[table]}=? AND lease_owner=? "
                    "AND handling IN ('pending', 'failed')",
                    (
                        rules.finished_state(outcome),
                        _epoch(outcome.get("retry_at")),
                        outcome.get("error"),
                        key,
                        owner,
                    ),
                )
            )
        pending = [u for u in updates if u.changed is None]
        if pending:
            self._commit_outcomes(pending)
        for update in updates:
            if update.error is not None:
                raise update.error
        return [bool(u.changed) for u in updates]

    def _commit_outcomes(self, updates: list[_Outcome]) -> None:
        # Group commit: outcomes that arrive while another thread writes are queued, and the
        # first thread to get the store commits every queued one in one transaction (a commit
        # costs more than the updates in it). Each caller returns once its own are committed.
        with self._outcomes_lock:
            self._outcomes.extend(updates)
        with self._lock:
            if updates[-1].changed is None:
                with self._outcomes_lock:
                    batch, self._outcomes = self._outcomes, []
                try:
                    if len(batch) == 1:  # alone: one statement, its own transaction
                        batch[0].changed = bool(self._write(batch[0].sql, batch[0].params).rowcount)
                    else:
                        with self._tx() as db:
                            for queued in batch:
                                queued.changed = bool(db.execute(queued.sql, queued.params).rowcount)
                except BaseException as exc:
                    for queued in batch:
                        queued.changed, queued.error = False, exc

    def get_work(self, work_id: str) -> WorkItem | None:
        ref = rules.parse_work_id(work_id)
        if ref is None:
            return None
        with self._lock:
            items = self._work_items(self._db, ref[0], [ref[1]])
        return items[0] if items and items[0].state is not None else None

    def pending_work(self, *, limit: int = 100) -> list[WorkItem]:
        items: list[WorkItem] = []
        with self._lock:
            for table in ("m", "s"):
                keys = self._db.execute(
                    f"SELECT {_KEYS[table]} FROM {_TABLES[table]} "
                    f"WHERE handling IN ('pending', 'failed', 'dead') ORDER BY {_KEYS[table]} LIMIT ?",
                    (limit,),
                ).fetchall()
                items.extend(self._work_items(self._db, table, [k[0] for k in keys]))
        items.sort(key=lambda w: w.created_at)
        return items[:limit]

    def retry_work(self, work_id: str | None = None) -> int:
        refs: list[tuple[str, str]] = []
        if work_id is None:
            refs = [(t, "handling IN ('failed', 'dead')") for t in ("m", "s")]
            params: tuple[Any, ...] = ()
        else:
            ref = rules.parse_work_id(work_id)
            if ref is None:
                return 0
            refs = [(ref[0], f"{_KEYS[ref[0]]}=? AND handling IN ('pending', 'failed', 'dead')")]
            params = (ref[1],)
        changed = 0
        with self._tx() as db:
            for table, where in refs:
                cur = db.execute(
                    f"UPDATE {_TABLES[table]} SET handling='pending', attempts=0, lease_owner=NULL, "
                    f"lease_until=NULL, next_attempt_at=NULL WHERE {where}",
                    params,
                )
                changed += cur.rowcount
        return changed
