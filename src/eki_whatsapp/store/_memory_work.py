"""The memory store's durable handling: claiming work (leases), finishing, listing and retrying
it (rules: "Durable handling" in :mod:`eki_whatsapp.store.rules`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from . import rules
from .base import Lease, LogEntry, StatusRecord, WorkItem, WorkOutcome, as_utc

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ._memory_state import MemoryBase, _Lazy, _Work


class MemoryWork(MemoryBase):
    """Durable handling, for :class:`~eki_whatsapp.store.memory.MemoryStore`."""

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
            return self._finish(work_id, owner, outcome)

    def finish_works(self, outcomes: Sequence[tuple[str, str, WorkOutcome]]) -> list[bool]:
        """:meth:`finish_work` for several attempts (``(work_id, owner, outcome)``), under one
        hold of the lock (the handler threads write their outcomes together); whether each
        changed its work."""
        with self._lock:
            return [self._finish(work_id, owner, outcome) for work_id, owner, outcome in outcomes]

    def _finish(self, work_id: str, owner: str, outcome: WorkOutcome) -> bool:
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
