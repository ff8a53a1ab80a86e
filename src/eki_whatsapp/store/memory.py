"""An in-process :class:`~eki_whatsapp.store.base.Store` for tests and throwaway bots."""

from __future__ import annotations

import copy
import dataclasses
import threading
from datetime import datetime
from typing import Any

from ..events import ChangeEvent, InboundMessage, StatusUpdate
from .base import (
    Direction,
    LedgerEntry,
    LogEntry,
    StatusRecord,
    UsageRecord,
    change_entry,
    first_error,
    inbound_entry,
    should_replace_status,
    utcnow,
)


def _status_record(status: StatusUpdate) -> StatusRecord:
    code, text = first_error(status)
    return StatusRecord(
        provider=status.provider,
        message_id=status.message_id,
        status=status.status,
        timestamp=status.timestamp,
        error_code=code,
        error_message=text,
        raw=dict(status.raw),
    )


class _Lazy:
    __slots__ = ("at", "id", "message")

    def __init__(self, message: InboundMessage, id: int, at: datetime) -> None:
        self.message = message
        self.id = id
        self.at = at


class MemoryStore:
    """Everything in dicts behind one lock. Lost when the process exits."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: list[LogEntry | _Lazy] = []
        self._by_id: dict[tuple[str, str], int] = {}  # (provider, message_id) -> index in _rows
        self._statuses: dict[tuple[str, str], list[StatusUpdate]] = {}
        self._windows: dict[tuple[str, str, str], datetime] = {}
        self._memory: dict[str, list[dict[str, Any]]] = {}
        self._usage: list[UsageRecord] = []
        self._ledger: dict[tuple[str, str, str], LedgerEntry] = {}
        self._kv: dict[tuple[str, str], Any] = {}

    # --- log -------------------------------------------------------------------------------
    def _row(self, index: int) -> LogEntry:
        row = self._rows[index]
        if isinstance(row, _Lazy):
            row = inbound_entry(row.message, id=row.id, now=row.at)
            self._rows[index] = row
        return row

    def _append(self, entry: LogEntry) -> int:
        if entry.id is None or entry.created_at is None:
            now = utcnow()
            entry = dataclasses.replace(entry, id=len(self._rows) + 1, created_at=now, updated_at=now)
        self._rows.append(entry)
        if entry.message_id is not None:
            self._by_id[(entry.provider, entry.message_id)] = len(self._rows) - 1
        return entry.id or 0

    def record_inbound(self, message: InboundMessage) -> bool:
        key = (message.provider, message.id)
        with self._lock:
            if key in self._by_id:
                return False
            # The log row is built when first read: the hot path only files the message.
            self._rows.append(_Lazy(message, len(self._rows) + 1, utcnow()))
            self._by_id[key] = len(self._rows) - 1
            wkey = (message.provider, message.recipient, message.sender)
            previous = self._windows.get(wkey)
            if previous is None or message.timestamp > previous:
                self._windows[wkey] = message.timestamp
            return True

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
                code, text = first_error(status)
                row = self._row(index)
                if should_replace_status(row.status, status.status):
                    changes: dict[str, Any] = {"status": status.status, "updated_at": utcnow()}
                    if code is not None or text is not None:
                        changes.update(error_code=code, error_message=text)
                    if status.pricing is not None and row.category is None:
                        changes["category"] = status.pricing.category
                    self._rows[index] = dataclasses.replace(row, **changes)
            return True

    def record_change(self, event: ChangeEvent) -> None:
        with self._lock:
            self._append(change_entry(event))

    def log_outbound(self, entry: LogEntry) -> int:
        with self._lock:
            if entry.message_id is not None:
                for status in self._statuses.get((entry.provider, entry.message_id), []):
                    record = _status_record(status)
                    if should_replace_status(entry.status, record.status):
                        entry = dataclasses.replace(
                            entry,
                            status=record.status,
                            error_code=record.error_code or entry.error_code,
                            error_message=record.error_message or entry.error_message,
                        )
            return self._append(entry)

    def get_message(self, provider: str, message_id: str) -> LogEntry | None:
        with self._lock:
            index = self._by_id.get((provider, message_id))
            return None if index is None else self._row(index)

    def list_log(
        self,
        *,
        provider: str | None = None,
        direction: Direction | None = None,
        user: str | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
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
            records = [_status_record(s) for s in self._statuses.get((provider, message_id), [])]
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
            return copy.deepcopy(self._memory.get(key, []))

    def save_memory(self, key: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._memory[key] = copy.deepcopy(items)

    def record_usage(self, record: UsageRecord) -> None:
        with self._lock:
            self._usage.append(record)

    def usage(self, *, user: str | None = None, since: datetime | None = None) -> list[UsageRecord]:
        with self._lock:
            return [
                r
                for r in self._usage
                if (user is None or r.user == user) and (since is None or r.at >= since)
            ]

    # --- ledger ----------------------------------------------------------------------------
    def add_ledger(self, entry: LedgerEntry) -> bool:
        key = (entry.provider, entry.message_id, entry.source)
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
            return copy.deepcopy(self._kv.get((namespace, key)))

    def set_value(self, namespace: str, key: str, value: Any) -> None:
        with self._lock:
            self._kv[(namespace, key)] = copy.deepcopy(value)

    def close(self) -> None:
        return None
