"""The default :class:`~eki_whatsapp.store.base.Store`: one SQLite file, no server.

Safe across threads (one connection behind a lock) and across processes on one machine
(WAL journal, busy timeout). Dedup is a ``UNIQUE`` constraint, so a message delivered twice at
the same moment is still recorded once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError, UnstorableValue
from ..events import ChangeEvent, InboundMessage, StatusUpdate
from . import rules
from ._sqlite_counters import SQLiteCounters
from ._sqlite_outbox import SQLiteOutbox
from ._sqlite_values import _INSERT_LOG, _dt, _epoch, _from_epoch, _iso
from ._sqlite_work import SQLiteWork, _Outcome
from .base import Lease, LogEntry, utcnow

if TYPE_CHECKING:
    pass


# Every page a write touches is copied to the WAL and checksummed, so each index and counter a row
# updates costs on every message: the log's ids are plain rowids (nothing is deleted from it, so
# AUTOINCREMENT's counter row would only add a page per insert) and the log has no index that no
# query reads (it is read by id, by message id and by its unfinished work). The ledger and the
# key-value space are WITHOUT ROWID: their rows live in their primary key's b-tree, so an entry
# or a receipt written changes one page fewer than a table and its key's index would. (Files
# made by earlier versions keep their rowid tables; both layouts read and write alike.)
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
) WITHOUT ROWID;
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
) WITHOUT ROWID;
"""

#: The durable-handling columns both log tables gained (the status log also ``attempts``).
_WORK_ADDED = (
    ("handling", "TEXT"),
    ("lease_owner", "TEXT"),
    ("lease_until", "REAL"),
    ("next_attempt_at", "REAL"),
    ("last_error", "TEXT"),
)
#: Columns added since the first release: (table, column, type), added by ``_upgrade`` in order.
_ADDED = (
    ("status_log", "category", "TEXT"),
    *(("message_log", column, kind) for column, kind in _WORK_ADDED),
    ("status_log", *_WORK_ADDED[0]),
    ("status_log", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    *(("status_log", column, kind) for column, kind in _WORK_ADDED[1:]),
)
# Only unfinished work is indexed: the sweeper and `pending` read these, the log stays lean.
_WORK_INDEXES = """
CREATE INDEX IF NOT EXISTS message_log_work ON message_log(handling)
    WHERE handling IN ('pending', 'failed', 'dead');
CREATE INDEX IF NOT EXISTS status_log_work ON status_log(handling)
    WHERE handling IN ('pending', 'failed', 'dead');
"""


#: What tells one write of a memory row from another: its time (to the microsecond) and length.
_MEMORY_VERSION = "updated_at || ' ' || length(items)"


class SQLiteStore(SQLiteWork, SQLiteOutbox, SQLiteCounters):
    """A :class:`Store` in one SQLite file (``":memory:"`` for a private in-memory database)."""

    MARK = "?"
    SEQ = "rowid"
    LEDGER_SEQ = "provider, message_id, source"  # its key: the ledger of a new file has no rowid
    _time_in = staticmethod(_iso)
    _time_out = staticmethod(_dt)
    _lease_in = staticmethod(_epoch)
    _lease_out = staticmethod(_from_epoch)

    @staticmethod
    def _json_in(value: Any) -> str | None:
        return None if value is None else rules.dumps(value)

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
        #: Set by :meth:`close`: the sweeper stops instead of failing every interval.
        self.closed = False
        self._json_functions: bool | None = None  # SQLite's JSON functions, probed when first needed
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
    def _tx(self, *, one_write: bool = False) -> Iterator[sqlite3.Connection]:
        """A transaction of its own, or a savepoint inside :meth:`batch` (committed with it).

        ``one_write``: the block writes at most one statement, which SQLite undoes by itself
        when it fails; inside a batch, whose transaction already holds the write lock, it needs
        no savepoint then (two statements fewer for each of a send's writes)."""
        with self._lock:
            try:
                if one_write and self._batch_depth > 0:
                    yield self._db
                    return
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

    def _query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    # --- log -------------------------------------------------------------------------------
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
        """Insert a log row (``params``: :meth:`_log_values`, when computed before); its id, or 0
        when ``ignore`` and it was a duplicate."""
        cur = db.execute(
            ("INSERT OR IGNORE " if ignore else "INSERT ") + _INSERT_LOG,
            params or cls._log_values(entry, work=work, lease=lease),
        )
        return cur.rowcount and (cur.lastrowid or 0)

    def record_inbound(self, message: InboundMessage) -> bool:
        return self._record_inbound(message) > 0

    def _record_inbound(
        self, message: InboundMessage, *, work: bool = False, lease: Lease | None = None
    ) -> int:
        # One statement, its own transaction: the row (and its work), and through the
        # message_log_window trigger the sender's window.
        params = self._log_values(rules.inbound_entry(message), work=work, lease=lease)
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
        self._record_change(rules.change_entry(event))

    def _record_change(self, entry: LogEntry, *, work: bool = False, lease: Lease | None = None) -> int:
        return (
            self._write("INSERT " + _INSERT_LOG, self._log_values(entry, work=work, lease=lease)).lastrowid
            or 0
        )

    def log_outbound(self, entry: LogEntry) -> int:
        # The early statuses are read in the insert's transaction: a status recorded meanwhile
        # either is read here or merges into the committed row (record_status).
        with self._tx(one_write=True) as db:
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

    # --- agent memory ------------------------------------------------------------------------
    def memory_version(self, key: str) -> str | None:
        """A text that changes whenever the memory at ``key`` is written (its write time and
        length), ``None`` when there is none: whether a history read before is still the one
        stored, without reading it again."""
        rows = self._query(f"SELECT {_MEMORY_VERSION} FROM memory WHERE key=?", (key,))  # noqa: S608
        return str(rows[0][0]) if rows else None

    def append_memory(self, key: str, items: list[dict[str, Any]], *, drop: int, version: str) -> bool:
        """Remove the ``drop`` oldest items of the memory at ``key`` and append ``items``, when
        its :meth:`memory_version` is ``version`` (unchanged since the caller read it); ``False``,
        and nothing written, when it is not or SQLite lacks its JSON functions.

        One statement that edits the stored JSON in place: a long history is not encoded and
        sent again to change its ends (the agent's memory, on every turn).
        """
        if self._json_functions is None:
            try:
                self._query("SELECT json_insert(json_remove('[1]', '$[0]'), '$[#]', json('2'))")
                self._json_functions = True
            except StoreError:
                self._json_functions = False
        if not self._json_functions:
            return False
        # Only counts shape the statement; every value is a parameter.
        edited = "json_remove(items" + ", '$[0]'" * drop + ")" if drop else "items"  # each shifts the rest
        if items:
            edited = f"json_insert({edited}" + ", '$[#]', json(?)" * len(items) + ")"  # '$[#]': the end
        changed = self._changes(
            f"UPDATE memory SET items={edited}, updated_at=? WHERE key=? AND {_MEMORY_VERSION}=?",  # noqa: S608
            (*(rules.dumps(item) for item in items), _iso(utcnow()), key, version),
        )
        return changed == 1

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self.closed = True
