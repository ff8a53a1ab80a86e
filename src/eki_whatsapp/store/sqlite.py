"""The default :class:`~eki_whatsapp.store.base.Store`: one SQLite file, no server.

Safe across threads (one connection behind a lock) and across processes on one machine
(WAL journal, busy timeout). Dedup is a ``UNIQUE`` constraint, so a message delivered twice at
the same moment is still recorded once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError, UnstorableValue
from ..events import ChangeEvent, Event, InboundMessage, StatusUpdate
from . import rules
from ._sql import SharedSQL
from .base import (
    Lease,
    LogEntry,
    OutboxItem,
    SendOutcome,
    StatusRecord,
    WorkItem,
    WorkKind,
    WorkOutcome,
    as_utc,
    utcnow,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


# Every page a write touches is copied to the WAL and checksummed, so each index and counter a row
# updates costs on every message: the log's ids are plain rowids (nothing is deleted from it, so
# AUTOINCREMENT's counter row would only add a page per insert) and the log has no index that no
# query reads (it is read by id, by message id and by its unfinished work).
SCHEMA = """
CREATE TABLE IF NOT EXISTS message_log (
    id INTEGER PRIMARY KEY,
    direction TEXT NOT NULL,
    provider TEXT NOT NULL,
    message_id TEXT,
    sender TEXT,
    recipient TEXT,
    type TEXT NOT NULL,
    text TEXT,
    status TEXT,
    error_code INTEGER,
    error_message TEXT,
    raw TEXT,
    timestamp TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    category TEXT,
    extra TEXT,
    handling TEXT,
    lease_owner TEXT,
    lease_until REAL,
    next_attempt_at REAL,
    last_error TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS message_log_provider_id ON message_log(provider, message_id)
    WHERE message_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS status_log (
    provider TEXT NOT NULL,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    error_code INTEGER,
    error_message TEXT,
    raw TEXT,
    category TEXT,
    handling TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    next_attempt_at REAL,
    last_error TEXT,
    PRIMARY KEY (provider, message_id, status)
);
CREATE TABLE IF NOT EXISTS windows (
    provider TEXT NOT NULL,
    business TEXT NOT NULL,
    user TEXT NOT NULL,
    last_inbound_at TEXT NOT NULL,
    PRIMARY KEY (provider, business, user)
);
-- rules.window_moves, in the statement that logs an inbound message: the window only moves forward.
CREATE TRIGGER IF NOT EXISTS message_log_window AFTER INSERT ON message_log
WHEN NEW.direction = 'in' AND NEW.type NOT LIKE 'event:%' AND NEW.sender IS NOT NULL
    AND NEW.recipient IS NOT NULL AND NEW.timestamp IS NOT NULL
BEGIN
    INSERT INTO windows (provider, business, user, last_inbound_at)
    VALUES (NEW.provider, NEW.recipient, NEW.sender, NEW.timestamp)
    ON CONFLICT(provider, business, user) DO UPDATE SET last_inbound_at=excluded.last_inbound_at
    WHERE excluded.last_inbound_at > windows.last_inbound_at;
END;
CREATE TABLE IF NOT EXISTS memory (
    key TEXT PRIMARY KEY,
    items TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost TEXT,
    at TEXT NOT NULL,
    turn_id TEXT,
    provider TEXT
);
CREATE TABLE IF NOT EXISTS ledger (
    provider TEXT NOT NULL,
    message_id TEXT NOT NULL,
    source TEXT NOT NULL,
    category TEXT,
    at TEXT NOT NULL,
    month TEXT NOT NULL,
    user TEXT,
    market TEXT,
    pricing_model TEXT,
    billable INTEGER,
    amount TEXT,
    currency TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (provider, message_id, source)
);
CREATE INDEX IF NOT EXISTS ledger_month ON ledger(month);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL,
    recipient TEXT NOT NULL,
    message TEXT NOT NULL,
    options TEXT NOT NULL,
    correlation TEXT,
    provider TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    expires_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    log_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_open ON outbox(state) WHERE state IN ('queued', 'unknown');
CREATE INDEX IF NOT EXISTS outbox_correlation ON outbox(correlation) WHERE correlation IS NOT NULL;
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""

_LOG_COLUMNS = (
    "direction, provider, message_id, sender, recipient, type, text, status, error_code, "
    "error_message, raw, timestamp, created_at, updated_at, attempts, reason, category, extra, handling"
)
_INSERT_LOG = (
    f"INTO message_log ({_LOG_COLUMNS}, lease_owner, lease_until) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
#: Columns added since the first release: (table, column, type), added by ``_upgrade``.
_ADDED = (
    ("status_log", "category", "TEXT"),
    ("message_log", "handling", "TEXT"),
    ("message_log", "lease_owner", "TEXT"),
    ("message_log", "lease_until", "REAL"),
    ("message_log", "next_attempt_at", "REAL"),
    ("message_log", "last_error", "TEXT"),
    ("status_log", "handling", "TEXT"),
    ("status_log", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("status_log", "lease_owner", "TEXT"),
    ("status_log", "lease_until", "REAL"),
    ("status_log", "next_attempt_at", "REAL"),
    ("status_log", "last_error", "TEXT"),
)
# Only unfinished work is indexed: the sweeper and `pending` read these, the log stays lean.
_WORK_INDEXES = """
CREATE INDEX IF NOT EXISTS message_log_work ON message_log(handling)
    WHERE handling IN ('pending', 'failed', 'dead');
CREATE INDEX IF NOT EXISTS status_log_work ON status_log(handling)
    WHERE handling IN ('pending', 'failed', 'dead');
"""
#: The work columns read back, the same for both tables (after the row's id and created time).
_WORK_COLUMNS = "handling, attempts, lease_owner, lease_until, next_attempt_at, last_error"
_TABLES = {"m": "message_log", "s": "status_log"}
_KEYS = {"m": "id", "s": "rowid"}
# rules.claimable, in SQL.
_CLAIMABLE = (
    "handling IN ('pending', 'failed') AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
    "AND (lease_until IS NULL OR lease_until <= ?)"
)


_OUTBOX_COLUMNS = (
    "id, state, recipient, message, options, correlation, provider, attempts, next_attempt_at, "
    "expires_at, lease_owner, lease_until, last_error, log_id, created_at, updated_at"
)
# rules.send_claimable, in SQL.
_SEND_CLAIMABLE = (
    "state IN ('queued', 'unknown') AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
    "AND (lease_until IS NULL OR lease_until <= ?)"
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


class _Outcome:
    """One queued ``finish_work`` update, and what became of it once committed."""

    __slots__ = ("changed", "error", "params", "sql")

    def __init__(self, sql: str, params: tuple[Any, ...]) -> None:
        self.sql = sql
        self.params = params
        self.changed: bool | None = None
        self.error: BaseException | None = None


class SQLiteStore(SharedSQL):
    """A :class:`Store` in one SQLite file (``":memory:"`` for a private in-memory database)."""

    MARK = "?"
    SEQ = "rowid"
    _time_in = staticmethod(_iso)
    _time_out = staticmethod(_dt)

    @staticmethod
    def _json_out(value: Any) -> Any:
        return json.loads(value)

    @staticmethod
    def _amount_in(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    def __init__(self, path: str | Path = "eki_whatsapp.sqlite3") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._outcomes: list[_Outcome] = []  # finish_work calls waiting for the next commit
        self._outcomes_lock = threading.Lock()
        self._batch_depth = 0  # batch() levels open; only the holder of self._lock reads it
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA busy_timeout=30000")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._upgrade()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store at {self.path!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _upgrade(self) -> None:
        """Bring a file written by an older version up to this schema (columns added since)."""
        columns = {
            table: {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for table in ("message_log", "status_log")
        }
        for table, column, kind in _ADDED:
            if column in columns[table]:
                continue
            try:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it first: fine
                    raise
        self._db.executescript(_WORK_INDEXES)
        # Written by earlier versions and read by no query: one page less per logged message.
        self._db.execute("DROP INDEX IF EXISTS message_log_created")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                nested = self._batch_depth > 0  # inside batch(): a savepoint, committed with it
                self._db.execute("SAVEPOINT tx" if nested else "BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK TO tx" if nested else "ROLLBACK")
                    if nested:
                        self._db.execute("RELEASE tx")
                    raise
                self._db.execute("RELEASE tx" if nested else "COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            except (UnicodeEncodeError, OverflowError) as exc:  # a lone surrogate, a number > 2**63
                raise UnstorableValue(f"SQLite store {self.path!r} cannot hold a value: {exc}") from exc

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Commit every write this thread makes inside in one transaction (each write stays
        atomic on its own, as a savepoint): one commit instead of several for the writes that
        follow one event, such as a send's log row, ledger entry and receipt."""
        with self._lock:
            if self._batch_depth:
                self._batch_depth += 1
                try:
                    yield
                finally:
                    self._batch_depth -= 1
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            self._batch_depth = 1
            try:
                yield
            except BaseException:
                self._batch_depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._batch_depth = 0
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        """One statement that is a whole write: its own transaction (no BEGIN/COMMIT round
        trips), or part of the open :meth:`batch`."""
        with self._lock:
            try:
                return self._db.execute(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            except (UnicodeEncodeError, OverflowError) as exc:  # a lone surrogate, a number > 2**63
                raise UnstorableValue(f"SQLite store {self.path!r} cannot hold a value: {exc}") from exc

    def _changes(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._write(sql, params).rowcount

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    # --- log -------------------------------------------------------------------------------
    @staticmethod
    def _log_params(
        entry: LogEntry,
        *,
        work: bool = False,
        lease: Lease | None = None,
        now: str | None = None,
    ) -> tuple[Any, ...]:
        """The values of a log row (with ``work``: ``pending``, claimed when ``lease`` is given),
        computed before the transaction so the write lock is held only for the write."""
        now = now or _iso(utcnow())
        return (
            entry.direction,
            entry.provider,
            entry.message_id,
            entry.sender,
            entry.recipient,
            entry.type,
            entry.text,
            entry.status,
            entry.error_code,
            entry.error_message,
            None if entry.raw is None else rules.dumps(entry.raw),
            _iso(entry.timestamp),
            now,
            now,
            1 if lease is not None else entry.attempts,
            entry.reason,
            entry.category,
            rules.dumps(entry.extra if type(entry.extra) is dict else dict(entry.extra))
            if entry.extra
            else None,
            "pending" if work else None,
            None if lease is None else lease.owner,
            None if lease is None else lease.until.timestamp(),
        )

    @classmethod
    def _insert_log(
        cls,
        db: sqlite3.Connection,
        entry: LogEntry,
        *,
        ignore: bool = False,
        work: bool = False,
        lease: Lease | None = None,
        params: tuple[Any, ...] | None = None,
    ) -> int:
        """Insert a log row (``params``: :meth:`_log_params`, when computed before); its id, or 0
        when ``ignore`` and it was a duplicate."""
        cur = db.execute(
            ("INSERT OR IGNORE " if ignore else "INSERT ") + _INSERT_LOG,
            params or cls._log_params(entry, work=work, lease=lease),
        )
        return cur.rowcount and (cur.lastrowid or 0)

    def record_inbound(self, message: InboundMessage) -> bool:
        return self._record_inbound(message) > 0

    def _record_inbound(
        self, message: InboundMessage, *, work: bool = False, lease: Lease | None = None
    ) -> int:
        # One statement, its own transaction: the row (and its work), and through the
        # message_log_window trigger the sender's window.
        params = self._log_params(rules.inbound_entry(message), work=work, lease=lease)
        cur = self._write("INSERT OR IGNORE " + _INSERT_LOG, params)
        return cur.rowcount and (cur.lastrowid or 0)

    def record_status(self, status: StatusUpdate) -> bool:
        return self._record_status(status) > 0

    def _record_status(self, status: StatusUpdate, *, work: bool = False, lease: Lease | None = None) -> int:
        facts = rules.status_facts(status)
        cur = self._write(
            "INSERT OR IGNORE INTO status_log (provider, message_id, status, timestamp, error_code, "
            "error_message, raw, category, handling, attempts, lease_owner, lease_until) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                status.provider,
                status.message_id,
                status.status,
                _iso(status.timestamp),
                facts.error_code,
                facts.error_message,
                rules.dumps(dict(status.raw)),
                facts.category,
                "pending" if work else None,
                0 if lease is None else 1,
                None if lease is None else lease.owner,
                None if lease is None else lease.until.timestamp(),
            ),
        )
        # Merged into its message's row once the status is committed: a row written meanwhile
        # reads the status itself (log_outbound), and a redelivered status (the process may have
        # died in between, before the answer) merges again, which changes nothing the second time.
        self._merge_status(status.provider, status.message_id, facts)
        return cur.rowcount and (cur.lastrowid or 0)

    def _merge_status(self, provider: str, message_id: str, facts: rules.StatusFacts) -> None:
        """rules.status_changes on the message's row: a compare-and-set on the status and
        category it was computed from (one statement), again if another write came first."""
        while True:
            rows = self._query(
                "SELECT id, status, category FROM message_log WHERE provider=? AND message_id=?",
                (provider, message_id),
            )
            if not rows:
                return
            key, status, category = rows[0]
            changes = rules.status_changes(status, category, (facts,))
            if not changes:
                return
            changes["updated_at"] = _iso(utcnow())
            # Column names come from rules.status_changes, never from input.
            cur = self._write(
                f"UPDATE message_log SET {', '.join(f'{c}=?' for c in changes)} "  # noqa: S608
                "WHERE id=? AND status IS ? AND category IS ?",
                (*changes.values(), key, status, category),
            )
            if cur.rowcount:
                return

    def record_change(self, event: ChangeEvent) -> None:
        self._write("INSERT " + _INSERT_LOG, self._log_params(rules.change_entry(event)))

    # --- durable handling ------------------------------------------------------------------
    def record_work(self, event: Event, lease: Lease | None = None) -> str | None:
        kind = rules.work_kind(event)
        if isinstance(event, InboundMessage):
            row = self._record_inbound(event, work=True, lease=lease)
        elif isinstance(event, StatusUpdate):
            row = self._record_status(event, work=True, lease=lease)
        else:
            params = self._log_params(rules.change_entry(event), work=True, lease=lease)
            row = self._write("INSERT " + _INSERT_LOG, params).lastrowid or 0
        return rules.work_id(kind, row) if row else None

    def _work_items(self, db: sqlite3.Connection, table: str, keys: list[int]) -> list[WorkItem]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        if table == "m":
            rows = db.execute(
                f"SELECT id, {_LOG_COLUMNS}, {_WORK_COLUMNS} FROM message_log "  # noqa: S608
                f"WHERE id IN ({marks}) ORDER BY id",
                keys,
            ).fetchall()
            return [self._work_item("m", r[0], self._row(r[:20]), None, r[13], r[20:]) for r in rows]
        rows = db.execute(
            "SELECT rowid, provider, message_id, status, timestamp, error_code, error_message, raw, "  # noqa: S608
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
        work: tuple[Any, ...],
    ) -> WorkItem:
        kind: WorkKind = "status" if status is not None else rules.entry_work_kind(entry)
        return WorkItem(
            id=f"{table}{key}",
            kind=kind,
            state=work[0],
            attempts=work[1],
            created_at=_dt(created) or utcnow(),
            lease_owner=work[2],
            lease_until=_from_epoch(work[3]),
            next_attempt_at=_from_epoch(work[4]),
            last_error=work[5],
            entry=entry,
            status=status,
        )

    def claim_work(self, work_id: str, lease: Lease, *, now: datetime) -> WorkItem | None:
        ref = rules.parse_work_id(work_id)
        if ref is None:
            return None
        table, key = ref
        t = now.timestamp()
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE {_TABLES[table]} SET lease_owner=?, lease_until=?, attempts=attempts+1 "  # noqa: S608
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
                    f"SELECT {key}, attempts, lease_until FROM {name} "  # noqa: S608
                    f"WHERE handling IN ('pending', 'failed', 'dead') AND {_CLAIMABLE} "
                    f"ORDER BY {key} LIMIT ?",
                    (t, t, limit),
                ).fetchall()
                dead = [r for r in rows if rules.dies(r[1], max_attempts, _from_epoch(r[2]), now)]
                for r in dead:
                    db.execute(
                        f"UPDATE {name} SET handling='dead', lease_owner=NULL, lease_until=NULL, "  # noqa: S608
                        f"last_error=? WHERE {key}=?",
                        (rules.died_error(r[1]), r[0]),
                    )
                due = [r[0] for r in rows if r not in dead]
                if due:
                    db.execute(
                        f"UPDATE {name} SET lease_owner=?, lease_until=?, attempts=attempts+1 "  # noqa: S608
                        f"WHERE {key} IN ({','.join('?' * len(due))})",
                        (lease.owner, lease.until.timestamp(), *due),
                    )
                    claimed.extend(self._work_items(db, table, due))
        claimed.sort(key=lambda w: w.created_at)
        return claimed[:limit]

    def finish_work(self, work_id: str, owner: str, **outcome: Unpack[WorkOutcome]) -> bool:
        ref = rules.parse_work_id(work_id)
        if ref is None:
            return False
        table, key = ref
        state = rules.finished_state(outcome)
        update = _Outcome(
            f"UPDATE {_TABLES[table]} SET handling=?, lease_owner=NULL, lease_until=NULL, "  # noqa: S608
            f"next_attempt_at=?, last_error=? WHERE {_KEYS[table]}=? AND lease_owner=? "
            "AND handling IN ('pending', 'failed')",
            (state, _epoch(outcome.get("retry_at")), outcome.get("error"), key, owner),
        )
        # Group commit: outcomes that arrive while another thread writes are queued, and the
        # first thread to get the store commits every queued one in one transaction (a commit
        # costs more than the updates in it). Each caller returns once its own is committed.
        with self._outcomes_lock:
            self._outcomes.append(update)
        with self._lock:
            if update.changed is None:
                with self._outcomes_lock:
                    batch, self._outcomes = self._outcomes, []
                try:
                    if len(batch) == 1:  # alone: one statement, its own transaction
                        update.changed = bool(self._write(update.sql, update.params).rowcount)
                    else:
                        with self._tx() as db:
                            for queued in batch:
                                queued.changed = bool(db.execute(queued.sql, queued.params).rowcount)
                except BaseException as exc:
                    for queued in batch:
                        queued.changed, queued.error = False, exc
        if update.error is not None:
            raise update.error
        return bool(update.changed)

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
                    f"SELECT {_KEYS[table]} FROM {_TABLES[table]} "  # noqa: S608
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
                    f"UPDATE {_TABLES[table]} SET handling='pending', attempts=0, lease_owner=NULL, "  # noqa: S608
                    f"lease_until=NULL, next_attempt_at=NULL WHERE {where}",
                    params,
                )
                changed += cur.rowcount
        return changed

    def log_outbound(self, entry: LogEntry) -> int:
        with self._tx() as db:
            if entry.message_id is not None:
                early = db.execute(
                    "SELECT status, error_code, error_message, category FROM status_log "
                    "WHERE provider=? AND message_id=? ORDER BY rowid",
                    (entry.provider, entry.message_id),
                ).fetchall()
                if early:
                    changes = rules.status_changes(
                        entry.status, entry.category, [rules.StatusFacts(*r) for r in early]
                    )
                    entry = replace(entry, **changes)
            return self._insert_log(db, entry)

    # --- window ----------------------------------------------------------------------------
    def last_inbound_at(self, provider: str, business: str | None, user: str) -> datetime | None:
        if business is None:
            rows = self._query(
                "SELECT MAX(last_inbound_at) FROM windows WHERE provider=? AND user=?",
                (provider, user),
            )
        else:
            rows = self._query(
                "SELECT last_inbound_at FROM windows WHERE provider=? AND business=? AND user=?",
                (provider, business, user),
            )
        return _dt(rows[0][0]) if rows else None

    # --- kv (reads and plain writes: SharedSQL) ------------------------------------------------
    @staticmethod
    def _write_value(db: sqlite3.Connection, namespace: str, key: str, new: Any) -> None:
        db.execute(
            "INSERT INTO kv (namespace, key, value) VALUES (?,?,?) "
            "ON CONFLICT(namespace, key) DO UPDATE SET value=excluded.value",
            (namespace, key, rules.dumps(new)),
        )

    @staticmethod
    def _read_value(db: sqlite3.Connection, namespace: str, key: str) -> Any:
        row = db.execute("SELECT value FROM kv WHERE namespace=? AND key=?", (namespace, key)).fetchone()
        return None if row is None else json.loads(row[0])

    # BEGIN IMMEDIATE takes the file's write lock before the read: read and write are one step for
    # every process on the file.
    def increment(self, namespace: str, key: str, amount: int = 1, *, limit: int | None = None) -> int | None:
        with self._tx() as db:
            after = rules.counter_after(self._read_value(db, namespace, key), amount, limit)
            if after is not None:
                self._write_value(db, namespace, key, after)
            return after

    def compare_and_set(self, namespace: str, key: str, expected: Any, value: Any) -> bool:
        with self._tx() as db:
            if not rules.same_value(self._read_value(db, namespace, key), expected):
                return False
            self._write_value(db, namespace, key, value)
            return True

    # --- outbox ----------------------------------------------------------------------------
    @staticmethod
    def _outbox_item(r: tuple[Any, ...]) -> OutboxItem:
        return OutboxItem(
            id=rules.outbox_id(r[0]),
            state=r[1],
            to=r[2],
            message=json.loads(r[3]),
            options=json.loads(r[4]),
            correlation=r[5],
            provider=r[6],
            attempts=r[7],
            next_attempt_at=_from_epoch(r[8]),
            expires_at=_from_epoch(r[9]) or utcnow(),
            lease_owner=r[10],
            lease_until=_from_epoch(r[11]),
            last_error=r[12],
            log_id=r[13],
            created_at=_dt(r[14]),
            updated_at=_dt(r[15]),
        )

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
                    f"SELECT id FROM outbox WHERE {_SEND_CLAIMABLE} ORDER BY id LIMIT ?",  # noqa: S608
                    (t, t, limit),
                ).fetchall()
            ]
            if not keys:
                return []
            marks = ",".join("?" * len(keys))
            db.execute(
                f"UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1, updated_at=? "  # noqa: S608
                f"WHERE id IN ({marks})",
                (lease.owner, lease.until.timestamp(), _iso(utcnow()), *keys),
            )
            rows = db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id IN ({marks}) ORDER BY id",  # noqa: S608
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
            f"UPDATE message_log SET {', '.join(f'{c}=?' for c in fields)} WHERE id=?",  # noqa: S608
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
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE correlation=? AND provider=? "  # noqa: S608
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
                    f"SELECT id, {_LOG_COLUMNS} FROM message_log WHERE id=?",  # noqa: S608
                    (item.log_id,),
                ).fetchone()
                if logged is not None:
                    entry = replace(
                        self._row(logged), provider=provider, message_id=message_id, status="accepted"
                    )
                    self._rewrite(db, item.log_id, entry)
            return item

    def get_send(self, outbox_id: str) -> OutboxItem | None:
        key = rules.parse_outbox_id(outbox_id)
        if key is None:
            return None
        rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id=?", (key,))  # noqa: S608
        return self._outbox_item(rows[0]) if rows else None

    def pending_sends(self, *, limit: int = 100) -> list[OutboxItem]:
        rows = self._query(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state IN ('queued', 'unknown') "  # noqa: S608
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        return [self._outbox_item(r) for r in rows]

    def retry_send(self, outbox_id: str | None = None, *, expires_at: datetime) -> int:
        where, params = "state IN ('queued', 'unknown', 'failed', 'expired')", ()
        if outbox_id is not None:
            key = rules.parse_outbox_id(outbox_id)
            if key is None:
                return 0
            where, params = where + " AND id=?", (key,)  # type: ignore[assignment]
        with self._tx() as db:
            cur = db.execute(
                "UPDATE outbox SET "  # noqa: S608
                "expires_at=CASE WHEN state IN ('failed', 'expired') THEN ? ELSE expires_at END, "
                "state=CASE WHEN state IN ('failed', 'expired') THEN 'queued' ELSE state END, "
                "attempts=0, next_attempt_at=NULL, lease_owner=NULL, lease_until=NULL, updated_at=? "
                f"WHERE {where}",
                (expires_at.timestamp(), _iso(utcnow()), *params),
            )
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
