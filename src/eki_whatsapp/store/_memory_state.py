"""The state of :class:`~eki_whatsapp.store.memory.MemoryStore`, which its parts share: the
log rows, statuses, work and outbox in dicts behind one lock."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..events import InboundMessage, StatusUpdate
from . import rules
from .base import HandlingState, Lease, LedgerEntry, LogEntry, OutboxItem, UsageRecord, as_utc

if TYPE_CHECKING:
    pass


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


class MemoryBase:
    """The dicts of a :class:`~eki_whatsapp.store.memory.MemoryStore` and the log methods its
    parts (durable handling, outbox) call."""

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

    if TYPE_CHECKING:

        def _row(self, index: int) -> LogEntry: ...
        def _append(self, entry: LogEntry) -> int: ...
        def record_status(self, status: StatusUpdate) -> bool: ...
        def log_outbound(self, entry: LogEntry) -> int: ...
