"""A :class:`~eki_whatsapp.store.base.Store` on PostgreSQL, for bots that run in several processes
on several hosts.

``WHATSAPP_STORE_URL=postgresql://user:password@host:5432/db`` (or ``postgres://``) selects it.
Needs the ``postgres`` extra (``pip install "eki-whatsapp[postgres]"``: psycopg 3 and
psycopg_pool).

* **Its own schema.** The tables live in one PostgreSQL schema (``eki_whatsapp`` unless the URL
  says ``?schema=name``), created on first use. The schema records its version: a newer library
  upgrades an older schema in place (the steps in :data:`MIGRATIONS`, under an advisory lock so
  processes starting together migrate once); an older library refuses a newer schema.
* **A connection pool** per process (``?pool_min=``, ``?pool_max=``, ``?pool_timeout=`` in the
  URL). A pool inherited through ``fork`` (gunicorn ``--preload``, Celery prefork) is left to the
  parent and a new one is opened. A connection the server dropped is replaced; a request that
  loses its connection half-way raises :class:`~eki_whatsapp.StoreError` (the webhook answers 503,
  the provider retries).
* **The same rules** as every store (:mod:`eki_whatsapp.store.rules`), in the statements of the
  SQLite store where they fit: dedup is ``INSERT ... ON CONFLICT DO NOTHING``; a window moves
  forward in one upsert; a status and its outbound row written at the same moment are serialised
  by a transaction-scoped advisory lock on the message, so whichever comes second merges both.
* The password never appears in a repr, a log line or an error: the URL is shown masked.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .._forks import forks
from ..errors import StoreError, UnstorableValue
from ..events import ChangeEvent, InboundMessage, StatusUpdate
from . import rules
from ._postgres_batch import Grouped, rows_of
from ._postgres_counters import PostgresCounters
from ._postgres_outbox import PostgresOutbox
from ._postgres_values import _LOG_COLUMNS, _STATUS_COLUMNS, _dt, _json
from ._postgres_work import PostgresWork
from .base import Lease, LogEntry, as_utc, utcnow

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "mask_url", "migrate"]

#: The schema, one step per version: step ``n`` brings a schema at version ``n - 1`` to ``n``.
#: Steps are only ever appended (a released step never changes).
MIGRATIONS: tuple[str, ...] = (
    # 1: the tables of the Store protocol.
    """
    CREATE TABLE message_log (
        id bigserial PRIMARY KEY,
        direction text NOT NULL,
        provider text NOT NULL,
        message_id text,
        sender text,
        recipient text,
        type text NOT NULL,
        text text,
        status text,
        error_code bigint,
        error_message text,
        raw jsonb,
        timestamp timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        reason text,
        category text,
        extra jsonb,
        UNIQUE (provider, message_id)
    );
    CREATE INDEX message_log_created ON message_log (created_at);
    CREATE TABLE status_log (
        seq bigserial,
        provider text NOT NULL,
        message_id text NOT NULL,
        status text NOT NULL,
        timestamp timestamptz NOT NULL,
        error_code bigint,
        error_message text,
        raw jsonb,
        category text,
        PRIMARY KEY (provider, message_id, status)
    );
    CREATE TABLE windows (
        provider text NOT NULL,
        business text NOT NULL,
        "user" text NOT NULL,
        last_inbound_at timestamptz NOT NULL,
        PRIMARY KEY (provider, business, "user")
    );
    CREATE TABLE memory (
        key text PRIMARY KEY,
        items jsonb NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE usage (
        id bigserial PRIMARY KEY,
        "user" text NOT NULL,
        model text NOT NULL,
        prompt_tokens bigint NOT NULL,
        completion_tokens bigint NOT NULL,
        cached_tokens bigint NOT NULL,
        cost numeric,
        at timestamptz NOT NULL,
        turn_id text,
        provider text
    );
    CREATE TABLE ledger (
        id bigserial,
        provider text NOT NULL,
        message_id text NOT NULL,
        source text NOT NULL,
        category text,
        at timestamptz NOT NULL,
        month text NOT NULL,
        "user" text,
        market text,
        pricing_model text,
        billable boolean,
        amount numeric,
        currency text NOT NULL,
        note text,
        PRIMARY KEY (provider, message_id, source)
    );
    CREATE INDEX ledger_month ON ledger (month);
    CREATE TABLE kv (
        namespace text NOT NULL,
        key text NOT NULL,
        value jsonb NOT NULL,
        PRIMARY KEY (namespace, key)
    );
    """,
    # 2: a user's conversation is read by sender (inbound) or recipient (outbound).
    """
    CREATE INDEX message_log_sender ON message_log (sender) WHERE direction = 'in';
    CREATE INDEX message_log_recipient ON message_log (recipient) WHERE direction = 'out';
    """,
    # 3: durable handling (rules: "Durable handling"). A message's or change's work lives on its
    # log row (``attempts`` is the row's own column), a status's on its status row, keyed by ``seq``.
    # Only unfinished work is indexed: the sweeper and ``pending`` read it, the log stays lean.
    """
    ALTER TABLE message_log
        ADD COLUMN handling text,
        ADD COLUMN lease_owner text,
        ADD COLUMN lease_until timestamptz,
        ADD COLUMN next_attempt_at timestamptz,
        ADD COLUMN last_error text;
    ALTER TABLE status_log
        ADD COLUMN handling text,
        ADD COLUMN attempts integer NOT NULL DEFAULT 0,
        ADD COLUMN lease_owner text,
        ADD COLUMN lease_until timestamptz,
        ADD COLUMN next_attempt_at timestamptz,
        ADD COLUMN last_error text;
    CREATE UNIQUE INDEX status_log_seq ON status_log (seq);
    CREATE INDEX message_log_work ON message_log (id) WHERE handling IN ('pending', 'failed', 'dead');
    CREATE INDEX status_log_work ON status_log (seq) WHERE handling IN ('pending', 'failed', 'dead');
    """,
    # 4: a user's window is read from the log (the latest inbound timestamp, one index probe)
    # instead of a row of its own: that row, updated by every message of the user, was locked by
    # each insert until its commit was on disk, so one user's messages were logged one at a time.
    """
    CREATE INDEX message_log_window ON message_log (provider, sender, recipient, timestamp)
        WHERE direction = 'in';
    DROP TABLE windows;
    """,
    # 5: the outbox (rules: "Outbox"): sends that wait, or whose outcome is unknown.
    """
    CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        state text NOT NULL,
        recipient text NOT NULL,
        message jsonb NOT NULL,
        options jsonb NOT NULL,
        correlation text,
        provider text,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        expires_at timestamptz NOT NULL,
        lease_owner text,
        lease_until timestamptz,
        last_error text,
        log_id bigint,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX outbox_open ON outbox (id) WHERE state IN ('queued', 'unknown');
    CREATE INDEX outbox_correlation ON outbox (correlation) WHERE correlation IS NOT NULL;
    """,
    # 6: fewer indexes on the log, which every message writes twice (its insert, then its
    # handling's outcome, an update no index can skip): created_at is read by no query, and one
    # index by sender serves both a user's conversation and their window.
    """
    DROP INDEX message_log_created;
    DROP INDEX message_log_sender;
    DROP INDEX message_log_window;
    CREATE INDEX message_log_user_in ON message_log (sender, provider, recipient, timestamp)
        WHERE direction = 'in';
    """,
)
#: The schema version this library writes.
SCHEMA_VERSION = len(MIGRATIONS)

DEFAULT_SCHEMA = "eki_whatsapp"
# First key of every advisory lock taken here, so they never meet another application's.
_LOCK_SPACE = 0x0E0CA7
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Settings of ours in the URL's query; the rest goes to libpq.
_OWN_PARAMS = ("schema", "pool_min", "pool_max", "pool_timeout")


_INSERT_COLUMNS = f"{_LOG_COLUMNS}, handling, lease_owner, lease_until"
_INSERT_VALUES = ",".join(["%s"] * 21)
_INSERT_SQL = (
    f"INSERT INTO message_log ({_INSERT_COLUMNS}) VALUES ({_INSERT_VALUES}) "  # noqa: S608
    "ON CONFLICT (provider, message_id) DO NOTHING RETURNING id"
).encode()


class _Url(NamedTuple):
    conninfo: str
    shown: str
    password: str | None
    schema: str
    pool_min: int
    pool_max: int
    pool_timeout: float


def mask_url(url: str) -> str:
    """``url`` with the password replaced by ``***`` (safe for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hostport}"))


def _parse_url(url: str, schema: str | None) -> _Url:
    """Split ``url`` into what libpq gets and our own settings; the shown URL hides the password."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreError(
            f"WHATSAPP_STORE_URL must start with postgresql:// for the PostgreSQL store, not {parts.scheme}://"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in _OWN_PARAMS}
    rest = [(k, v) for k, v in query if k not in _OWN_PARAMS]
    password = parts.password
    shown = mask_url(url)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest, quote_via=quote), ""))
    name = schema or own.get("schema") or DEFAULT_SCHEMA
    if not _IDENTIFIER.fullmatch(name):
        raise StoreError(
            f"schema={name!r} in WHATSAPP_STORE_URL is not a plain PostgreSQL name: use lower-case "
            "letters, digits and underscores"
        )

    def number(key: str, default: float) -> float:
        try:
            return float(own.get(key, default))
        except ValueError:
            raise StoreError(f"{key}={own[key]!r} in WHATSAPP_STORE_URL is not a number") from None

    return _Url(
        conninfo,
        shown,
        None if password is None else unquote(password),
        name,
        int(number("pool_min", 1)),
        int(number("pool_max", 10)),
        number("pool_timeout", 5.0),
    )


def migrate(conn: psycopg.Connection[Any], schema: str, target: int = SCHEMA_VERSION) -> int:
    """Bring ``schema`` to version ``target`` (creating it when missing); returns the version found.

    Runs in the caller's transaction, under an advisory lock, so that processes starting at once
    migrate one after the other. Refuses a schema newer than this library knows.
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_SPACE, schema))
    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".schema_version ('
        "version integer NOT NULL, upgraded_at timestamptz NOT NULL DEFAULT now())"
    )
    # The schema name is checked to be a plain identifier (_IDENTIFIER) before it gets here.
    row = conn.execute(f'SELECT max(version) FROM "{schema}".schema_version').fetchone()  # noqa: S608
    found = int(row[0]) if row and row[0] is not None else 0
    if found > SCHEMA_VERSION:
        from .. import __version__

        raise StoreError(
            f"the PostgreSQL store's schema {schema!r} is at version {found}, newer than this "
            f"eki-whatsapp {__version__} knows (up to version {SCHEMA_VERSION}): a newer eki-whatsapp "
            "wrote it. Upgrade eki-whatsapp in this process too (pip install -U eki-whatsapp), or "
            "point WHATSAPP_STORE_URL at another schema (?schema=name) or database"
        )
    conn.execute(f'SET LOCAL search_path TO "{schema}"')
    for version in range(found + 1, target + 1):
        conn.execute(MIGRATIONS[version - 1].encode())
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return found


def _check_connection(conn: psycopg.Connection[Any]) -> None:
    """Ping a connection taken from the pool only when the server said something while it was
    idle (a server that ends a session sends its reason, then closes: the socket is readable):
    a round trip on every request would cost the webhook's ack as much as its own insert."""
    import select

    from psycopg_pool import ConnectionPool

    try:
        readable = bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError):  # closed under us
        readable = True
    if readable or conn.broken or conn.closed:
        ConnectionPool.check_connection(conn)


class PostgresStore(PostgresWork, PostgresOutbox, PostgresCounters):
    """The :class:`~eki_whatsapp.store.base.Store` protocol on PostgreSQL (see the module's text).

    ``PostgresStore("postgresql://bot:secret@db:5432/app")``; ``schema`` overrides the URL's
    ``?schema=`` (default ``eki_whatsapp``).
    """

    MARK = "%s"
    SEQ = "seq"
    LEDGER_SEQ = "id"
    _time_in = staticmethod(as_utc)
    _time_out = staticmethod(_dt)
    _lease_in = staticmethod(as_utc)
    _lease_out = staticmethod(_dt)

    _json_in = staticmethod(_json)

    @staticmethod
    def _json_out(value: Any) -> Any:
        return value  # psycopg reads jsonb back as Python values

    @staticmethod
    def _amount_in(value: Decimal | None) -> Decimal | None:
        return value

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as exc:
            raise StoreError(
                "WHATSAPP_STORE_URL points at PostgreSQL but psycopg is not installed: "
                'pip install "eki-whatsapp[postgres]"'
            ) from exc
        self._url = _parse_url(url, schema)
        self.schema = self._url.schema
        self._lock = threading.Lock()
        self._forks = forks()  # which process this is (a fork's child counts one more)
        #: Set by :meth:`close`: the sweeper stops instead of failing every interval.
        self.closed = False
        self._pool = self._open_pool()
        # The webhook's inserts of new messages, committed together (group commit: see
        # _postgres_batch); keyed by message (a row's provider and message id), so one message
        # delivered twice at once is in two batches and found new once.
        self._inbound: Grouped[tuple[Any, ...], int] = Grouped(
            self._insert_inbound_rows, self._insert_inbound_row, key=lambda values: values[1:3]
        )
        # The handlers' reads of a user's states (opt-out, handoff) at the same moment, one query
        # (reads never conflict: each is a key of its own).
        self._reads: Grouped[tuple[str, tuple[str, ...]], dict[str, Any]] = Grouped(
            self._read_many_values, self._read_values, key=id
        )
        try:
            # Not pipelined: a migration step is a script of several statements.
            with self._conn() as conn, conn.transaction():
                migrate(conn, self.schema)
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self._url.shown!r})"

    @property
    def url(self) -> str:
        """The store's URL with the password masked (safe to log)."""
        return self._url.shown

    # --- connections ---------------------------------------------------------------------------
    def _open_pool(self) -> ConnectionPool[Any]:
        from psycopg_pool import ConnectionPool

        options = f"-c search_path={self.schema} -c timezone=UTC"
        return ConnectionPool(
            self._url.conninfo,
            min_size=self._url.pool_min,
            max_size=max(self._url.pool_min, self._url.pool_max),
            timeout=self._url.pool_timeout,
            kwargs={
                "options": options,
                "application_name": "eki-whatsapp",
                "connect_timeout": 5,
                "autocommit": True,
            }
            | self._libpq_overrides(),
            # A connection the server dropped (restart, failover, pg_terminate_backend) is found
            # when it is taken from the pool and replaced, instead of failing a request.
            check=_check_connection,
            name=f"eki-whatsapp-{self.schema}",
            open=True,
        )

    def _libpq_overrides(self) -> dict[str, Any]:
        """``application_name`` given in the URL wins over ours."""
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(self._url.conninfo)
        return {k: given[k] for k in ("application_name", "connect_timeout") if k in given}

    def _pool_here(self) -> ConnectionPool[Any]:
        """This process's pool: a child of ``fork`` opens its own (the parent's sockets and pool
        threads are not its to use)."""
        if self._forks != forks():
            with self._lock:
                if self._forks != forks():
                    self._pool = self._open_pool()
                    self._forks = forks()
        return self._pool

    def _scrub(self, text: str) -> str:
        password = self._url.password
        return text.replace(password, "***") if password else text

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in autocommit mode (one statement is one transaction); database
        failures become :class:`StoreError` with the password masked."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool_here().connection() as conn:
                yield conn
        except StoreError:
            raise
        except PoolTimeout as exc:
            raise StoreError(
                f"PostgreSQL store {self._url.shown}: no connection within {self._url.pool_timeout:g} s "
                f"({self._scrub(str(exc))}); is the server up, and pool_max large enough?"
            ) from None
        except psycopg.DataError as exc:  # NUL in text, \u0000 or Infinity in jsonb, bigint overflow
            raise UnstorableValue(
                f"PostgreSQL store {self._url.shown} cannot hold a value: {self._scrub(str(exc))}"
            ) from None
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store {self._url.shown}: {self._scrub(str(exc))}") from None
        except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 for it
            raise UnstorableValue(f"PostgreSQL store {self._url.shown} cannot hold a value: {exc}") from None

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction of several statements, pipelined: statements whose result is not read
        travel together, so a transaction costs few round trips."""
        with self._conn() as conn, conn.pipeline(), conn.transaction():
            yield conn

    def _query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(sql.encode(), params).fetchall()

    def _changes(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._conn() as conn:
            return conn.execute(sql.encode(), params).rowcount

    def _execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        """One statement (its own transaction); the first row it returns, if any."""
        with self._conn() as conn:
            cur = conn.execute(sql.encode(), params)
            return cur.fetchone() if cur.description else None

    @staticmethod
    def _lock_message(conn: psycopg.Connection[Any], provider: str, message_id: str) -> None:
        """Serialise the writers of one message (its statuses and its outbound row) until commit."""
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_SPACE + 1, f"{provider}\x1f{message_id}")
        )

    # --- log -------------------------------------------------------------------------------------
    @classmethod
    def _insert_log(
        cls, conn: psycopg.Connection[Any], entry: LogEntry, *, work: bool = False, lease: Lease | None = None
    ) -> int:
        """Insert a row (with ``work``: ``pending``, claimed by ``lease`` when given, in the same
        statement); 0 when its message id is already logged (ids of ``NULL`` never collide)."""
        row = conn.execute(_INSERT_SQL, cls._log_values(entry, work=work, lease=lease)).fetchone()
        return 0 if row is None else int(row[0])

    def record_inbound(self, message: InboundMessage) -> bool:
        return self._record_inbound(message) > 0

    def _record_inbound(
        self, message: InboundMessage, *, work: bool = False, lease: Lease | None = None
    ) -> int:
        # One insert, one round trip: the row (with its work) is the window too (the latest
        # inbound timestamp of the user, see last_inbound_at), so no row is shared between
        # messages, and the messages that threads of this process record at the same moment are
        # one statement and one commit (self._inbound).
        return self._inbound(self._log_values(rules.inbound_entry(message), work=work, lease=lease))

    def _insert_inbound_row(self, values: tuple[Any, ...]) -> int:
        with self._conn() as conn:
            row = conn.execute(_INSERT_SQL, values).fetchone()
        return 0 if row is None else int(row[0])

    def _insert_inbound_rows(self, rows: Sequence[tuple[Any, ...]]) -> list[int]:
        """Insert inbound rows of distinct messages in one statement; each one's id, 0 for one
        logged already."""
        import psycopg

        sql = (
            f"INSERT INTO message_log ({_INSERT_COLUMNS}) VALUES {rows_of(len(rows), 21)} "  # noqa: S608
            "ON CONFLICT (provider, message_id) DO NOTHING RETURNING provider, message_id, id"
        )
        # In key order: two batches that insert the same new messages at once then lock them in
        # the same order, instead of deadlocking (which PostgreSQL breaks only after a second).
        ordered = sorted(rows, key=lambda row: (row[1], row[2] or ""))
        with self._conn() as conn:
            # A raw cursor ($n placeholders): psycopg would parse a statement of more than 50
            # %s afresh on every call, which costs more than the statement's own work here.
            cursor = psycopg.RawCursor(conn).execute(
                sql.encode(), [value for row in ordered for value in row]
            )
            inserted = cursor.fetchall()
        ids = {(provider, message_id): row_id for provider, message_id, row_id in inserted}
        return [ids.get((row[1], row[2]), 0) for row in rows]

    def record_status(self, status: StatusUpdate) -> bool:
        return self._record_status(status) > 0

    def _record_status(self, status: StatusUpdate, *, work: bool = False, lease: Lease | None = None) -> int:
        record = rules.status_record(status)
        with self._tx() as conn:
            self._lock_message(conn, record.provider, record.message_id)
            inserted = conn.execute(
                f"INSERT INTO status_log ({_STATUS_COLUMNS}, handling, attempts, lease_owner, lease_until) "  # noqa: S608
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT DO NOTHING RETURNING seq",
                (
                    record.provider,
                    record.message_id,
                    record.status,
                    as_utc(record.timestamp),
                    record.error_code,
                    record.error_message,
                    _json(record.raw),
                    record.category,
                    "pending" if work else None,
                    0 if lease is None else 1,
                    None if lease is None else lease.owner,
                    None if lease is None else as_utc(lease.until),
                ),
            ).fetchone()
            if inserted is None:
                return 0
            row = conn.execute(
                "SELECT id, status, category FROM message_log WHERE provider=%s AND message_id=%s FOR UPDATE",
                (record.provider, record.message_id),
            ).fetchone()
            if row is not None:
                changes = rules.status_changes(row[1], row[2], (rules.status_facts(status),))
                if changes:
                    changes["updated_at"] = utcnow()
                    # Column names come from rules.status_changes, never from input.
                    columns = ", ".join(f"{c}=%s" for c in changes)
                    conn.execute(
                        f"UPDATE message_log SET {columns} WHERE id=%s".encode(),  # noqa: S608
                        (*changes.values(), row[0]),
                    )
            return int(inserted[0])

    def record_change(self, event: ChangeEvent) -> None:
        self._record_change(rules.change_entry(event))

    def log_outbound(self, entry: LogEntry) -> int:
        with self._tx() as conn:
            if entry.message_id is not None:
                self._lock_message(conn, entry.provider, entry.message_id)
                early = conn.execute(
                    "SELECT status, error_code, error_message, category FROM status_log "
                    "WHERE provider=%s AND message_id=%s ORDER BY seq",
                    (entry.provider, entry.message_id),
                ).fetchall()
                if early:
                    changes = rules.status_changes(
                        entry.status, entry.category, [rules.StatusFacts(*r) for r in early]
                    )
                    entry = replace(entry, **changes)
            row_id = self._insert_log(conn, entry)
            if not row_id:
                raise StoreError(
                    f"message {entry.provider}:{entry.message_id} is already in the log; a message id is "
                    "logged once"
                )
            return row_id

    def _record_change(self, entry: LogEntry, *, work: bool = False, lease: Lease | None = None) -> int:
        with self._conn() as conn:
            return self._insert_log(conn, entry, work=work, lease=lease)

    # --- key-value space -------------------------------------------------------------------------
    def get_values(self, key: str, namespaces: Sequence[str]) -> dict[str, Any]:
        return self._reads((key, tuple(namespaces)))

    def _read_values(self, request: tuple[str, tuple[str, ...]]) -> dict[str, Any]:
        return super().get_values(*request)

    def _read_many_values(self, requests: Sequence[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
        """:meth:`get_values` for several keys, in one query (of arrays: one statement whatever
        their number)."""
        keys = sorted({key for key, _ in requests})
        namespaces = sorted({namespace for _, wanted in requests for namespace in wanted})
        rows = self._query(
            "SELECT key, namespace, value FROM kv WHERE key = ANY(%s) AND namespace = ANY(%s)",
            (keys, namespaces),
        )
        found = {(key, namespace): value for key, namespace, value in rows if value is not None}
        return [{n: found[(key, n)] for n in wanted if (key, n) in found} for key, wanted in requests]

    # --- window ----------------------------------------------------------------------------------
    def last_inbound_at(self, provider: str, business: str | None, user: str) -> datetime | None:
        # rules.window_key/window_moves: the latest provider timestamp among the user's messages
        # to that business (a late older message or a duplicate does not move a maximum).
        sql = "SELECT max(timestamp) FROM message_log WHERE direction='in' AND provider=%s AND sender=%s"
        params: tuple[str, ...] = (provider, user)
        if business is not None:
            sql += " AND recipient=%s"
            params = (provider, user, business)
        rows = self._query(sql, params)
        return _dt(rows[0][0]) if rows else None

    def close(self) -> None:
        """Close this process's pool."""
        if self._forks == forks():
            self._pool.close()
            self.closed = True
