"""SQL the SQLite and PostgreSQL stores share, with each dialect's placeholder (``?`` or ``%s``)
and value conversions (SQLite keeps times as ISO text and JSON as text; PostgreSQL has
``timestamptz``, ``numeric`` and ``jsonb``).

:class:`SharedSQL` holds the reads and writes that are the same statement in both: the message
log's and the outbox's reads, the key-value space, agent memory, usage and the cost ledger. Each
store subclasses it, sets :attr:`~SharedSQL.MARK` and the ``SEQ`` columns, and supplies
``_query``, ``_changes`` and the conversions; what needs a dialect's own locking (counters,
claims) stays in the store.
"""

# ruff: noqa: S608  (statements built from this module's constants and the placeholder, never values)
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from ..events import Event, InboundMessage, StatusUpdate
from . import rules
from .base import Lease, LedgerEntry, LogEntry, LogQuery, OutboxItem, StatusRecord, UsageRecord, utcnow

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["LOG_COLUMNS", "OUTBOX_COLUMNS", "STATUS_COLUMNS", "SharedSQL", "json_text", "log_filter"]

#: The columns of a log row as read back (its id first, its handling state last).
LOG_COLUMNS = (
    "id, direction, provider, message_id, sender, recipient, type, text, status, error_code, "
    "error_message, raw, timestamp, created_at, updated_at, attempts, reason, category, extra, handling"
)
#: The fields of a log row, in :data:`LOG_COLUMNS` order (the columns have the fields' names).
_LOG_FIELDS = tuple(column.strip() for column in LOG_COLUMNS.split(","))
OUTBOX_COLUMNS = (
    "id, state, recipient, message, options, correlation, provider, attempts, next_attempt_at, "
    "expires_at, lease_owner, lease_until, last_error, log_id, created_at, updated_at"
)
#: The fields of an outbox item, in :data:`OUTBOX_COLUMNS` order (``recipient`` is ``to``).
_OUTBOX_FIELDS = tuple(column.strip() for column in OUTBOX_COLUMNS.replace("recipient", "to").split(","))
STATUS_COLUMNS = "provider, message_id, status, timestamp, error_code, error_message, raw, category"
_USAGE_COLUMNS = '"user", model, prompt_tokens, completion_tokens, cached_tokens, cost, at, turn_id, provider'
_LEDGER_COLUMNS = (
    'provider, message_id, source, category, at, "user", market, pricing_model, billable, amount, '
    "currency, note"
)


def log_filter(query: LogQuery, mark: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (``""`` when there is no filter) and its parameters for
    :meth:`~.base.Store.list_log`'s filters over ``message_log``."""
    where: list[str] = []
    params: list[Any] = []
    if (provider := query.get("provider")) is not None:
        where.append(f"provider={mark}")
        params.append(provider)
    if (direction := query.get("direction")) is not None:
        where.append(f"direction={mark}")
        params.append(direction)
    if (user := query.get("user")) is not None:
        where.append(f"((direction='in' AND sender={mark}) OR (direction='out' AND recipient={mark}))")
        params.extend([user, user])
    return (" WHERE " + " AND ".join(where) if where else ""), params


def json_text(value: Any) -> str:
    """A JSON value as the text both stores write (PostgreSQL casts it to ``jsonb``): one
    encoding, as :func:`.rules.json_copy` would read it back."""
    return rules.dumps(dict(value) if isinstance(value, Mapping) else value)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


class _Statements:
    """The shared statements in one dialect's placeholder."""

    def __init__(self, mark: str, seq: str) -> None:
        def marks(n: int) -> str:
            return ",".join([mark] * n)

        self.get_message = (
            f"SELECT {LOG_COLUMNS} FROM message_log WHERE provider={mark} AND message_id={mark}"
        )
        self.statuses = (
            f"SELECT {STATUS_COLUMNS} FROM status_log WHERE provider={mark} AND message_id={mark} "
            f"ORDER BY timestamp, {seq}"
        )
        self.get_value = f"SELECT value FROM kv WHERE namespace={mark} AND key={mark}"
        self.set_value = (
            f"INSERT INTO kv (namespace, key, value) VALUES ({marks(3)}) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value=excluded.value"
        )
        self.load_memory = f"SELECT items FROM memory WHERE key={mark}"
        self.save_memory = (
            f"INSERT INTO memory (key, items, updated_at) VALUES ({marks(3)}) "
            "ON CONFLICT (key) DO UPDATE SET items=excluded.items, updated_at=excluded.updated_at"
        )
        self.record_usage = f"INSERT INTO usage ({_USAGE_COLUMNS}) VALUES ({marks(9)})"
        self.usage = f"SELECT {_USAGE_COLUMNS} FROM usage WHERE 1=1"
        self.add_ledger = (
            f"INSERT INTO ledger ({_LEDGER_COLUMNS}, month) VALUES ({marks(13)}) ON CONFLICT DO NOTHING"
        )
        self.ledger = f"SELECT {_LEDGER_COLUMNS} FROM ledger"


class SharedSQL:
    """The statements the SQL stores share (see the module docstring)."""

    #: The dialect's placeholder.
    MARK: ClassVar[str] = "?"
    #: The columns that order ``status_log``'s and ``ledger``'s rows as they were inserted.
    SEQ: ClassVar[str] = "rowid"
    LEDGER_SEQ: ClassVar[str] = "rowid"
    _SQL: ClassVar[_Statements]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._SQL = _Statements(cls.MARK, cls.SEQ)

    # --- what each store supplies ------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _changes(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one statement that is a whole write; how many rows it changed."""
        raise NotImplementedError

    # The dialect's conversions (each store sets them): times, lease times, JSON and amounts as
    # written to and read back from its columns.
    _time_in: Callable[[datetime], Any]
    _time_out: Callable[[Any], datetime | None]
    _lease_in: Callable[[datetime], Any]
    _lease_out: Callable[[Any], datetime | None]
    _json_in: Callable[[Any], Any]  # a JSON value for a column (``None`` stays SQL ``NULL``)
    _json_out: Callable[[Any], Any]
    _amount_in: Callable[[Decimal | None], Any]

    # --- the message log's writes ------------------------------------------------------------
    def _record_inbound(
        self, message: InboundMessage, *, work: bool = False, lease: Lease | None = None
    ) -> int:
        raise NotImplementedError

    def _record_status(self, status: StatusUpdate, *, work: bool = False, lease: Lease | None = None) -> int:
        raise NotImplementedError

    def _record_change(self, entry: LogEntry, *, work: bool = False, lease: Lease | None = None) -> int:
        """Insert another notification's row; its id."""
        raise NotImplementedError

    def record_work(self, event: Event, lease: Lease | None = None) -> str | None:
        """Record ``event`` and that it must be handled, in one insert (rules: durable handling)."""
        if isinstance(event, InboundMessage):
            row = self._record_inbound(event, work=True, lease=lease)
        elif isinstance(event, StatusUpdate):
            row = self._record_status(event, work=True, lease=lease)
        else:
            row = self._record_change(rules.change_entry(event), work=True, lease=lease)
        return rules.work_id(rules.work_kind(event), row) if row else None

    @classmethod
    def _log_values(
        cls, entry: LogEntry, *, work: bool = False, lease: Lease | None = None
    ) -> tuple[Any, ...]:
        """The values of a log row in the order of the stores' insert (``work``: ``pending``,
        claimed by ``lease``, its first attempt, when given); computed before the transaction
        so the write lock is held only for the write."""
        now = cls._time_in(utcnow())
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
            cls._json_in(entry.raw),
            None if entry.timestamp is None else cls._time_in(entry.timestamp),
            now,
            now,
            1 if lease is not None else entry.attempts,
            entry.reason,
            entry.category,
            cls._json_in(dict(entry.extra)) if entry.extra else None,
            "pending" if work else None,
            None if lease is None else lease.owner,
            None if lease is None else cls._lease_in(lease.until),
        )

    # --- the message log's reads -------------------------------------------------------------
    def _row(self, row: Sequence[Any]) -> LogEntry:
        fields = dict(zip(_LOG_FIELDS, row, strict=True))
        load, time = self._json_out, self._time_out
        raw, extra = row[11], row[18]
        fields.update(
            raw=None if raw is None else load(raw),
            timestamp=time(row[12]),
            created_at=time(row[13]),
            updated_at=time(row[14]),
            extra=(None if extra is None else load(extra)) or {},
        )
        return LogEntry(**fields)

    def _status(self, r: Sequence[Any]) -> StatusRecord:
        return StatusRecord(
            r[0],
            r[1],
            r[2],
            self._time_out(r[3]) or utcnow(),
            r[4],
            r[5],
            None if r[6] is None else self._json_out(r[6]),
            r[7],
        )

    def get_message(self, provider: str, message_id: str) -> LogEntry | None:
        rows = self._query(self._SQL.get_message, (provider, message_id))
        return self._row(rows[0]) if rows else None

    def list_log(self, **query: Unpack[LogQuery]) -> list[LogEntry]:
        where, params = log_filter(query, self.MARK)
        sql = f"SELECT {LOG_COLUMNS} FROM message_log{where} ORDER BY id DESC LIMIT {self.MARK}"
        return [self._row(r) for r in self._query(sql, (*params, rules.log_limit(query)))]

    def statuses(self, provider: str, message_id: str) -> list[StatusRecord]:
        return [self._status(r) for r in self._query(self._SQL.statuses, (provider, message_id))]

    # --- the outbox's reads ------------------------------------------------------------------
    def _outbox_item(self, r: Sequence[Any]) -> OutboxItem:
        item = dict(zip(_OUTBOX_FIELDS, r, strict=True))
        lease, time = self._lease_out, self._time_out
        item.update(
            id=rules.outbox_id(r[0]),
            message=self._json_out(r[3]),
            options=self._json_out(r[4]),
            next_attempt_at=lease(r[8]),
            expires_at=lease(r[9]) or utcnow(),
            lease_until=lease(r[11]),
            created_at=time(r[14]),
            updated_at=time(r[15]),
        )
        return OutboxItem(**item)

    def get_send(self, outbox_id: str) -> OutboxItem | None:
        key = rules.parse_outbox_id(outbox_id)
        if key is None:
            return None
        rows = self._query(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id={self.MARK}", (key,))
        return self._outbox_item(rows[0]) if rows else None

    def pending_sends(self, *, limit: int = 100) -> list[OutboxItem]:
        open_ = f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state IN ('queued', 'unknown')"
        rows = self._query(f"{open_} ORDER BY id LIMIT {self.MARK}", (limit,))
        return [self._outbox_item(r) for r in rows]

    def retry_send(self, outbox_id: str | None = None, *, expires_at: datetime) -> int:
        where, params = "state IN ('queued', 'unknown', 'failed', 'expired')", tuple[Any, ...]()
        if outbox_id is not None:
            key = rules.parse_outbox_id(outbox_id)
            if key is None:
                return 0
            where, params = f"{where} AND id={self.MARK}", (key,)
        ended = "state IN ('failed', 'expired')"
        return self._changes(
            f"UPDATE outbox SET expires_at=CASE WHEN {ended} THEN {self.MARK} ELSE expires_at END, "
            f"state=CASE WHEN {ended} THEN 'queued' ELSE state END, attempts=0, next_attempt_at=NULL, "
            f"lease_owner=NULL, lease_until=NULL, updated_at={self.MARK} WHERE {where}",
            (self._lease_in(expires_at), self._time_in(utcnow()), *params),
        )

    # --- key-value space ---------------------------------------------------------------------
    def get_value(self, namespace: str, key: str) -> Any:
        rows = self._query(self._SQL.get_value, (namespace, key))
        return self._json_out(rows[0][0]) if rows else None

    def get_values(self, key: str, namespaces: Sequence[str]) -> dict[str, Any]:
        """The values stored under ``key`` in each of ``namespaces`` that has one (one query)."""
        marks = ",".join([self.MARK] * len(namespaces))
        rows = self._query(
            f"SELECT namespace, value FROM kv WHERE key={self.MARK} AND namespace IN ({marks})",
            (key, *namespaces),
        )
        found = {namespace: self._json_out(value) for namespace, value in rows}
        return {namespace: value for namespace, value in found.items() if value is not None}

    def set_value(self, namespace: str, key: str, value: Any) -> None:
        self._changes(self._SQL.set_value, (namespace, key, json_text(value)))

    # --- memory / usage ----------------------------------------------------------------------
    def load_memory(self, key: str) -> list[dict[str, Any]]:
        rows = self._query(self._SQL.load_memory, (key,))
        return list(self._json_out(rows[0][0])) if rows else []

    def save_memory(self, key: str, items: list[dict[str, Any]]) -> None:
        self._changes(self._SQL.save_memory, (key, json_text(items), self._time_in(utcnow())))

    def record_usage(self, record: UsageRecord) -> None:
        r = record
        params = (r.user, r.model, r.prompt_tokens, r.completion_tokens, r.cached_tokens)
        at = self._time_in(r.at)
        self._changes(self._SQL.record_usage, (*params, self._amount_in(r.cost), at, r.turn_id, r.provider))

    def usage(self, *, user: str | None = None, since: datetime | None = None) -> list[UsageRecord]:
        sql = self._SQL.usage
        params: list[Any] = []
        if user is not None:
            sql += f' AND "user"={self.MARK}'
            params.append(user)
        if since is not None:
            sql += f" AND at>={self.MARK}"
            params.append(self._time_in(since))
        time = self._time_out
        return [
            UsageRecord(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                None if r[5] is None else Decimal(r[5]),
                time(r[6]) or utcnow(),
                r[7],
                r[8],
            )
            for r in self._query(sql + " ORDER BY id", params)
        ]

    # --- ledger ------------------------------------------------------------------------------
    def add_ledger(self, entry: LedgerEntry) -> bool:
        e = entry
        head = (e.provider, e.message_id, e.source, e.category, self._time_in(e.at), e.user, e.market)
        tail = (e.pricing_model, e.billable, self._amount_in(e.amount), e.currency, e.note, e.month)
        return bool(self._changes(self._SQL.add_ledger, (*head, *tail)))

    def ledger(self, *, month: str | None = None) -> list[LedgerEntry]:
        sql, params = self._SQL.ledger, tuple[str, ...]()
        if month is not None:
            sql, params = f"{sql} WHERE month={self.MARK}", (month,)
        rows = self._query(f"{sql} ORDER BY at, {self.LEDGER_SEQ}", params)
        return [
            LedgerEntry(
                provider=r[0],
                message_id=r[1],
                source=r[2],
                category=r[3],
                at=self._time_out(r[4]) or utcnow(),
                user=r[5],
                market=r[6],
                pricing_model=r[7],
                billable=None if r[8] is None else bool(r[8]),
                amount=_decimal(r[9]),
                currency=r[10],
                note=r[11],
            )
            for r in rows
        ]
