"""An in-process :class:`~eki_whatsapp.store.base.Store` for tests and throwaway bots."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..events import ChangeEvent, Event, InboundMessage, StatusUpdate
from . import rules
from .base import (
    HandlingState,
    Lease,
    LedgerEntry,
    LogEntry,
    LogQuery,
    OutboxItem,
    SendOutcome,
    StatusRecord,
    UsageRecord,
    WorkItem,
    WorkOutcome,
    as_utc,
    utcnow,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


class _Lazy:
    __slots__ = ("at", "id", "message")

    def __init__(self, message: InboundMessage, id: int, at: datetime) -> None:
        self.message = message
        self.id = id
        self.at = at


class _Work:
    """The handling state of one event (what the SQL stores keep in columns of its row)."""

    __slots__ = ("attempts", "created", "error", "lease_owner", "lease_until", "next_at", "ref", "state")

    def __init__(self, ref: int | StatusUpdate, lease: Lease | None, created: datetime) -> None:
        self.ref = ref  # the index of its log row, or the status itself
        self.state: HandlingState = "pending"
        self.attempts = 0 if lease is None else 1
        self.lease_owner = None if lease is None else lease.owner
        self.lease_until = None if lease is None else as_utc(lease.until)
        self.next_at: datetime | None = None
        self.error: str | None = None
        self.created = created


def _stored(entry: LogEntry) -> LogEntry:
    """A log row as a store gives it back: JSON values, UTC times (like the SQL stores)."""
    return dataclasses.replace(
        entry,
        raw=rules.json_copy(entry.raw),
        extra=rules.json_copy(dict(entry.extra)) if entry.extra else {},
        timestamp=None if entry.timestamp is None else as_utc(entry.timestamp),
    )


class MemoryStore:
    """Everything in dicts behind one lock. Lost when the process exits.

    Follows :mod:`eki_whatsapp.store.rules` like every store: what goes in comes back as the SQL
    stores would give it back (JSON values, UTC times), so a test on this store holds on them.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: list[LogEntry | _Lazy] = []
        self._by_id: dict[tuple[str, str], int] = {}  # (provider, message_id) -> index in _rows
        self._statuses: dict[tuple[str, str], list[StatusUpdate]] = {}
        self._windows: dict[tuple[str, str, str], datetime] = {}
        # Histories are kept as their JSON text, like the SQL stores: one encode to save and one
        # decode to load is half the work of copying the objects both ways.
        self._memory: dict[str, str] = {}
        self._usage: list[UsageRecord] = []
        self._ledger: dict[tuple[str, str, str], LedgerEntry] = {}
        self._kv: dict[tuple[str, str], Any] = {}
        self._work: dict[str, _Work] = {}
        self._status_rows = 0
        self._outbox: dict[int, OutboxItem] = {}

    # --- log -------------------------------------------------------------------------------
    def _row(self, index: int) -> LogEntry:
        row = self._rows[index]
        if isinstance(row, _Lazy):
            row = _stored(rules.inbound_entry(row.message, id=row.id, now=row.at))
            work = self._work.get(rules.work_id("message", index + 1))
            if work is not None:
                row = dataclasses.replace(row, handling=work.state, attempts=work.attempts)
            self._rows[index] = row
        return row

    def _append(self, entry: LogEntry) -> int:
        now = utcnow()
        entry = dataclasses.replace(_stored(entry), id=len(self._rows) + 1, created_at=now, updated_at=now)
        self._rows.append(entry)
        if entry.message_id is not None:
            self._by_id[(entry.provider, entry.message_id)] = len(self._rows) - 1
        return entry.id or 0

    def record_inbound(self, message: InboundMessage) -> bool:
        return self._record_inbound(message) > 0

    def _record_inbound(self, message: InboundMessage) -> int:
        key = (message.provider, message.id)
        with self._lock:
            if key in self._by_id:
                return 0
            # The log row is built when first read: the hot path only files the message.
            self._rows.append(_Lazy(message, len(self._rows) + 1, utcnow()))
            self._by_id[key] = len(self._rows) - 1
            wkey, at = rules.window_key(message), as_utc(message.timestamp)
            if rules.window_moves(self._windows.get(wkey), at):
                self._windows[wkey] = at
            return len(self._rows)

    def record_status(self, status: StatusUpdate) -> bool:
        key = (status.provider, status.message_id)
        with self._lock:
            seen = self._statuses.get(key)
            if seen is None:
                self._statuses[key] = [status]  # turned into StatusRecords when read
            else:
                for earlier in seen:
                    if earlier.status == status.status:
                        return False
                seen.append(status)
            index = self._by_id.get(key)
            if index is not None:
                row = self._row(index)
                changes = rules.status_changes(row.status, row.category, (rules.status_facts(status),))
                if changes:
                    self._rows[index] = dataclasses.replace(row, updated_at=utcnow(), **changes)
            return True

    def record_change(self, event: ChangeEvent) -> None:
        with self._lock:
            self._append(rules.change_entry(event))

    # --- durable handling ------------------------------------------------------------------
    def record_work(self, event: Event, lease: Lease | None = None) -> str | None:
        kind = rules.work_kind(event)
        with self._lock:  # one write: nobody sees the event without its work
            ref: int | StatusUpdate
            if isinstance(event, InboundMessage):
                row = self._record_inbound(event)
                ref = row - 1
            elif isinstance(event, StatusUpdate):
                row = self._status_rows + 1 if self.record_status(event) else 0
                self._status_rows += 1 if row else 0
                ref = event
            else:
                row = self._append(rules.change_entry(event))
                ref = row - 1
            if not row:
                return None
            work_id = rules.work_id(kind, row)
            self._work[work_id] = _Work(ref, lease, utcnow())
            if not isinstance(ref, StatusUpdate) and not isinstance(self._rows[ref], _Lazy):
                self._show(work_id, self._work[work_id])
            return work_id

    def _show(self, work_id: str, work: _Work) -> None:
        """Mirror the handling state on the log row (SQL stores keep it there). A row not built
        yet takes the state when it is (``_row``): the hot path stays lazy."""
        if isinstance(work.ref, int):
            row = self._rows[work.ref]
            if not isinstance(row, _Lazy):
                self._rows[work.ref] = dataclasses.replace(row, handling=work.state, attempts=work.attempts)

    def _item(self, work_id: str, work: _Work) -> WorkItem:
        entry: LogEntry | None = None
        status: StatusRecord | None = None
        if isinstance(work.ref, int):
            entry = self._row(work.ref)
        else:
            record = rules.status_record(work.ref)
            status = dataclasses.replace(
                record, raw=rules.json_copy(record.raw), timestamp=as_utc(record.timestamp)
            )
        handling = (work.state, work.attempts, work.lease_owner, work.lease_until, work.next_at, work.error)
        return rules.work_item(work_id, entry, status, work.created, handling)

    def _claim(self, work: _Work, lease: Lease) -> None:
        work.lease_owner, work.lease_until = lease.owner, as_utc(lease.until)
        work.attempts += 1

    def claim_work(self, work_id: str, lease: Lease, *, now: datetime) -> WorkItem | None:
        with self._lock:
            work = self._work.get(work_id)
            if work is None or not rules.claimable(work.state, work.lease_until, work.next_at, as_utc(now)):
                return None
            self._claim(work, lease)
            self._show(work_id, work)
            return self._item(work_id, work)

    def claim_due(
        self, lease: Lease, *, now: datetime, max_attempts: int, limit: int = 100
    ) -> list[WorkItem]:
        now = as_utc(now)
        claimed: list[WorkItem] = []
        with self._lock:
            for work_id, work in self._work.items():
                if len(claimed) >= limit:
                    break
                if not rules.claimable(work.state, work.lease_until, work.next_at, now):
                    continue
                if rules.dies(work.attempts, max_attempts, work.lease_until, now):
                    work.state, work.error = "dead", rules.died_error(work.attempts)
                    work.lease_owner = work.lease_until = None
                else:
                    self._claim(work, lease)
                    claimed.append(self._item(work_id, work))
                self._show(work_id, work)
        return claimed

    def finish_work(self, work_id: str, owner: str, **outcome: Unpack[WorkOutcome]) -> bool:
        with self._lock:
            work = self._work.get(work_id)
            if work is None or work.lease_owner != owner or work.state not in rules.OPEN_STATES:
                return False
            retry_at = outcome.get("retry_at")
            work.state = rules.finished_state(outcome)
            work.lease_owner = work.lease_until = None
            work.next_at = None if retry_at is None else as_utc(retry_at)
            work.error = outcome.get("error")
            self._show(work_id, work)
            return True

    def get_work(self, work_id: str) -> WorkItem | None:
        with self._lock:
            work = self._work.get(work_id)
            return None if work is None else self._item(work_id, work)

    def pending_work(self, *, limit: int = 100) -> list[WorkItem]:
        with self._lock:
            items = [self._item(i, w) for i, w in self._work.items() if w.state != "handled"]
        items.sort(key=lambda w: w.created_at)
        return items[:limit]

    def retry_work(self, work_id: str | None = None) -> int:
        changed = 0
        with self._lock:
            for wid, work in self._work.items():
                if work_id is None and work.state not in ("failed", "dead"):
                    continue
                if work_id is not None and (wid != work_id or work.state == "handled"):
                    continue
                work.state, work.attempts, work.next_at = "pending", 0, None
                work.lease_owner = work.lease_until = None
                self._show(wid, work)
                changed += 1
        return changed

    def log_outbound(self, entry: LogEntry) -> int:
        with self._lock:
            if entry.message_id is not None:
                key = (entry.provider, entry.message_id)
                if key in self._by_id:
                    raise StoreError(
                        f"MemoryStore: message {entry.message_id!r} of {entry.provider!r} is already "
                        "in the log (a message id is logged once)"
                    )
                early = [rules.status_facts(s) for s in self._statuses.get(key, ())]
                changes = rules.status_changes(entry.status, entry.category, early)
                if changes:
                    entry = dataclasses.replace(entry, **changes)
            return self._append(entry)

    def get_message(self, provider: str, message_id: str) -> LogEntry | None:
        with self._lock:
            index = self._by_id.get((provider, message_id))
            return None if index is None else self._row(index)

    def list_log(self, **query: Unpack[LogQuery]) -> list[LogEntry]:
        provider, direction, user = query.get("provider"), query.get("direction"), query.get("user")
        limit = rules.log_limit(query)
        with self._lock:
            out = []
            for index in range(len(self._rows) - 1, -1, -1):
                row = self._row(index)
                if provider is not None and row.provider != provider:
                    continue
                if direction is not None and row.direction != direction:
                    continue
                if user is not None and row.user != user:
                    continue
                out.append(row)
                if len(out) >= limit:
                    break
            return out

    def statuses(self, provider: str, message_id: str) -> list[StatusRecord]:
        with self._lock:
            updates = list(self._statuses.get((provider, message_id), ()))
        records = [rules.status_record(s) for s in updates]
        records = [
            dataclasses.replace(r, raw=rules.json_copy(r.raw), timestamp=as_utc(r.timestamp)) for r in records
        ]
        return sorted(records, key=lambda s: s.timestamp)

    # --- window ----------------------------------------------------------------------------
    def last_inbound_at(self, provider: str, business: str | None, user: str) -> datetime | None:
        with self._lock:
            if business is not None:
                return self._windows.get((provider, business, user))
            times = [t for (p, _b, u), t in self._windows.items() if p == provider and u == user]
            return max(times) if times else None

    # --- memory / usage ----------------------------------------------------------------------
    def load_memory(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            text = self._memory.get(key)
        return list(json.loads(text)) if text else []

    def save_memory(self, key: str, items: list[dict[str, Any]]) -> None:
        text = rules.dumps(list(items))
        with self._lock:
            self._memory[key] = text

    def record_usage(self, record: UsageRecord) -> None:
        if record.at.tzinfo is not timezone.utc:  # given back in UTC, like the SQL stores
            record = dataclasses.replace(record, at=as_utc(record.at))
        with self._lock:
            self._usage.append(record)

    def usage(self, *, user: str | None = None, since: datetime | None = None) -> list[UsageRecord]:
        start = None if since is None else as_utc(since)
        with self._lock:
            return [
                r
                for r in self._usage
                if (user is None or r.user == user) and (start is None or r.at >= start)
            ]

    # --- ledger ----------------------------------------------------------------------------
    def add_ledger(self, entry: LedgerEntry) -> bool:
        key = rules.ledger_key(entry)
        if entry.at.tzinfo is not timezone.utc:  # given back in UTC, like the SQL stores
            entry = dataclasses.replace(entry, at=as_utc(entry.at))
        with self._lock:
            if key in self._ledger:
                return False
            self._ledger[key] = entry
            return True

    def ledger(self, *, month: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            entries = [e for e in self._ledger.values() if month is None or e.month == month]
        return sorted(entries, key=lambda e: e.at)

    # --- kv --------------------------------------------------------------------------------
    def get_value(self, namespace: str, key: str) -> Any:
        with self._lock:
            value = self._kv.get((namespace, key))
        return rules.json_copy(value)

    def set_value(self, namespace: str, key: str, value: Any) -> None:
        copied = rules.json_copy(value)
        with self._lock:
            self._kv[(namespace, key)] = copied

    def increment(self, namespace: str, key: str, amount: int = 1, *, limit: int | None = None) -> int | None:
        with self._lock:
            after = rules.counter_after(self._kv.get((namespace, key)), amount, limit)
            if after is not None:
                self._kv[(namespace, key)] = after
            return after

    def compare_and_set(self, namespace: str, key: str, expected: Any, value: Any) -> bool:
        copied = rules.json_copy(value)
        with self._lock:
            if not rules.same_value(self._kv.get((namespace, key)), expected):
                return False
            self._kv[(namespace, key)] = copied
            return True

    # --- outbox ----------------------------------------------------------------------------
    def enqueue_send(self, item: OutboxItem, entry: LogEntry) -> str:
        with self._lock:
            row = self.log_outbound(entry)
            key = len(self._outbox) + 1
            now = utcnow()
            self._outbox[key] = dataclasses.replace(
                item,
                id=rules.outbox_id(key),
                log_id=row,
                message=rules.json_copy(item.message),
                options=rules.json_copy(item.options) or {},
                expires_at=as_utc(item.expires_at),
                lease_until=None if item.lease_until is None else as_utc(item.lease_until),
                next_attempt_at=None if item.next_attempt_at is None else as_utc(item.next_attempt_at),
                created_at=now,
                updated_at=now,
            )
            return rules.outbox_id(key)

    def claim_sends(self, lease: Lease, *, now: datetime, limit: int = 100) -> list[OutboxItem]:
        now = as_utc(now)
        claimed: list[OutboxItem] = []
        with self._lock:
            for key, item in self._outbox.items():
                if len(claimed) >= limit:
                    break
                if rules.send_claimable(item.state, item.lease_until, item.next_attempt_at, now):
                    item = self._outbox[key] = dataclasses.replace(
                        item,
                        lease_owner=lease.owner,
                        lease_until=as_utc(lease.until),
                        attempts=item.attempts + 1,
                        updated_at=utcnow(),
                    )
                    claimed.append(item)
        return claimed

    def finish_send(self, outbox_id: str, owner: str, **outcome: Unpack[SendOutcome]) -> bool:
        key = rules.parse_outbox_id(outbox_id)
        with self._lock:
            item = self._outbox.get(key) if key is not None else None
            if (
                item is None
                or key is None
                or item.lease_owner != owner
                or item.state not in rules.OUTBOX_OPEN
            ):
                return False
            entry, retry_at = outcome.get("entry"), outcome.get("retry_at")
            if entry is not None and item.log_id is not None:
                self._rewrite(item.log_id - 1, entry)
            self._outbox[key] = dataclasses.replace(
                item,
                state=outcome["state"],
                lease_owner=None,
                lease_until=None,
                next_attempt_at=None if retry_at is None else as_utc(retry_at),
                last_error=outcome.get("error"),
                correlation=outcome.get("correlation"),
                provider=outcome.get("provider"),
                updated_at=utcnow(),
            )
            return True

    def _rewrite(self, index: int, entry: LogEntry) -> None:
        """A send's log row, rewritten to its outcome (rules.rewritten_row)."""
        row = self._row(index)
        early = []
        if entry.message_id is not None:
            key = (entry.provider, entry.message_id)
            if self._by_id.get(key, index) != index:
                raise StoreError(
                    f"MemoryStore: message {entry.message_id!r} of {entry.provider!r} is already in the log"
                )
            early = [rules.status_facts(s) for s in self._statuses.get(key, ())]
        if row.message_id is not None:
            self._by_id.pop((row.provider, row.message_id), None)
        fields = rules.rewritten_row(_stored(entry), early)
        self._rows[index] = dataclasses.replace(row, updated_at=utcnow(), **fields)
        if entry.message_id is not None:
            self._by_id[(entry.provider, entry.message_id)] = index

    def resolve_send(self, provider: str, correlation: str, message_id: str) -> OutboxItem | None:
        with self._lock:
            for key, item in self._outbox.items():
                if item.state != "unknown" or item.correlation != correlation or item.provider != provider:
                    continue
                if item.log_id is not None:
                    row = self._row(item.log_id - 1)
                    resolved = dataclasses.replace(
                        row, provider=provider, message_id=message_id, status="accepted"
                    )
                    self._rewrite(item.log_id - 1, resolved)
                self._outbox[key] = dataclasses.replace(
                    item, state="sent", lease_owner=None, lease_until=None, updated_at=utcnow()
                )
                return item
        return None

    def get_send(self, outbox_id: str) -> OutboxItem | None:
        key = rules.parse_outbox_id(outbox_id)
        with self._lock:
            return None if key is None else self._outbox.get(key)

    def pending_sends(self, *, limit: int = 100) -> list[OutboxItem]:
        with self._lock:
            return [i for i in self._outbox.values() if i.state in rules.OUTBOX_OPEN][:limit]

    def retry_send(self, outbox_id: str | None = None, *, expires_at: datetime) -> int:
        wanted = None if outbox_id is None else rules.parse_outbox_id(outbox_id)
        if outbox_id is not None and wanted is None:
            return 0
        changed = 0
        with self._lock:
            for key, item in self._outbox.items():
                if (wanted is not None and key != wanted) or item.state not in rules.OUTBOX_RETRYABLE:
                    continue
                reopen = item.state not in rules.OUTBOX_OPEN
                self._outbox[key] = dataclasses.replace(
                    item,
                    state="queued" if reopen else item.state,
                    expires_at=as_utc(expires_at) if reopen else item.expires_at,
                    attempts=0,
                    next_attempt_at=None,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=utcnow(),
                )
                changed += 1
        return changed

    def close(self) -> None:
        return None
