"""The memory store's outbox: sends kept until they go out (rules: "Outbox" in
:mod:`eki_whatsapp.store.rules`)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import StoreError
from . import rules
from .base import Lease, LogEntry, OutboxItem, SendOutcome, as_utc, utcnow

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ._memory_state import MemoryBase, _stored


class MemoryOutbox(MemoryBase):
    """The outbox, for :class:`~eki_whatsapp.store.memory.MemoryStore`."""

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
