"""An in-process :class:`~eki_whatsapp.store.base.Store` for tests and throwaway bots."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..events import ChangeEvent, Event, InboundMessage, StatusUpdate
from . import rules
from ._memory_outbox import MemoryOutbox
from ._memory_state import _Lazy, _stored, _Work
from ._memory_work import MemoryWork
from .base import Lease, LedgerEntry, LogEntry, LogQuery, StatusRecord, UsageRecord, as_utc, utcnow

if TYPE_CHECKING:
    from typing_extensions import Unpack


class MemoryStore(MemoryWork, MemoryOutbox):
    """Everything in dicts behind one lock. Lost when the process exits.

    Follows :mod:`eki_whatsapp.store.rules` like every store: what goes in comes back as the SQL
    stores would give it back (JSON values, UTC times), so a test on this store holds on them.
    """

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

    def _record_inbound(self, message: InboundMessage, now: datetime | None = None) -> int:
        key = (message.provider, message.id)
        with self._lock:
            if key in self._by_id:
                return 0
            # The log row is built when first read: the hot path only files the message.
            self._rows.append(_Lazy(message, len(self._rows) + 1, now or utcnow()))
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
        now = utcnow()  # one clock read for the row and its work
        with self._lock:  # one write: nobody sees the event without its work
            ref: int | StatusUpdate
            if isinstance(event, InboundMessage):
                row = self._record_inbound(event, now)
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
            work_id = rules.work_id(rules.work_kind(event), row)
            work = self._work[work_id] = _Work(ref, lease, now)
            self._show(work_id, work)
            return work_id

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

    def get_values(self, key: str, namespaces: Sequence[str]) -> dict[str, Any]:
        """The values stored under ``key`` in each of ``namespaces`` that has one."""
        with self._lock:
            found = {n: self._kv.get((n, key)) for n in namespaces}
        return {n: rules.json_copy(v) for n, v in found.items() if v is not None}

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

    def close(self) -> None:
        return None
