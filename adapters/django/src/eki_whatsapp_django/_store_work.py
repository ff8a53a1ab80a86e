"""The Django store's durable handling: claiming work (leases), finishing, listing and retrying
it (rules: "Durable handling" in :mod:`eki_whatsapp.store.rules`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import F, Q

from eki_whatsapp.store import rules
from eki_whatsapp.store.base import Lease, WorkItem, WorkOutcome, utcnow

from ._store_db import StoreBase, _db, _due, _from_db, _status, _to_db
from .models import WhatsAppLog, WhatsAppStatus

if TYPE_CHECKING:
    from typing_extensions import Unpack


class DjangoWork(StoreBase):
    """Durable handling, for :class:`~eki_whatsapp_django.store.DjangoStore`."""

    def _rows(self, work_id: str) -> tuple[models.QuerySet[Any], int] | None:
        ref = rules.parse_work_id(work_id)
        if ref is None:
            return None
        model: type[models.Model] = WhatsAppStatus if ref[0] == "s" else WhatsAppLog
        return model._default_manager.using(self.using).filter(pk=ref[1]), ref[1]

    def _item(self, row: WhatsAppLog | WhatsAppStatus) -> WorkItem:
        if isinstance(row, WhatsAppStatus):
            entry, status, created, table = None, _status(row), row.timestamp, "s"
        else:
            entry, status, created, table = self._entry(row), None, row.created_at, "m"
        until, next_at = _from_db(row.lease_until), _from_db(row.next_attempt_at)
        handling = (row.handling, row.attempts, row.lease_owner, until, next_at, row.last_error)
        return rules.work_item(f"{table}{row.pk}", entry, status, _from_db(created) or utcnow(), handling)

    @staticmethod
    def _claimable(now: datetime) -> Q:
        """rules.claimable as a filter."""
        return Q(handling__in=rules.OPEN_STATES) & _due(now)

    @_db
    def claim_work(self, work_id: str, lease: Lease, *, now: datetime) -> WorkItem | None:
        """Claim one piece of work: one conditional UPDATE, so two claimers cannot both win."""
        found = self._rows(work_id)
        if found is None:
            return None
        rows, _ = found
        claimed = rows.filter(self._claimable(now)).update(
            lease_owner=lease.owner, lease_until=_to_db(lease.until), attempts=F("attempts") + 1
        )
        return self._item(rows.get()) if claimed else None

    @_db
    def claim_due(
        self, lease: Lease, *, now: datetime, max_attempts: int, limit: int = 100
    ) -> list[WorkItem]:
        """Claim what is due, row by row with the same conditional UPDATE as ``claim_work``."""
        claimed: list[WorkItem] = []
        for model in (WhatsAppLog, WhatsAppStatus):
            due = model._default_manager.using(self.using).filter(self._claimable(now)).order_by("pk")
            for pk, attempts, until in due.values_list("pk", "attempts", "lease_until")[:limit]:
                rows = model._default_manager.using(self.using).filter(pk=pk).filter(self._claimable(now))
                if rules.dies(attempts, max_attempts, _from_db(until), now):
                    rows.update(
                        handling="dead",
                        lease_owner=None,
                        lease_until=None,
                        last_error=rules.died_error(attempts),
                    )
                elif rows.update(
                    lease_owner=lease.owner, lease_until=_to_db(lease.until), attempts=F("attempts") + 1
                ):
                    claimed.append(self._item(rows.model._default_manager.using(self.using).get(pk=pk)))
        claimed.sort(key=lambda w: w.created_at)
        return claimed[:limit]

    @_db
    def finish_work(self, work_id: str, owner: str, **outcome: Unpack[WorkOutcome]) -> bool:
        """End ``owner``'s attempt (only while it still holds the lease)."""
        found = self._rows(work_id)
        if found is None:
            return False
        state = rules.finished_state(outcome)
        return bool(
            found[0]
            .filter(lease_owner=owner, handling__in=rules.OPEN_STATES)
            .update(
                handling=state,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=_to_db(outcome.get("retry_at")),
                last_error=outcome.get("error"),
            )
        )

    @_db
    def get_work(self, work_id: str) -> WorkItem | None:
        """One piece of work by id."""
        found = self._rows(work_id)
        if found is None:
            return None
        row = found[0].exclude(handling__isnull=True).first()
        return None if row is None else self._item(row)

    @_db
    def pending_work(self, *, limit: int = 100) -> list[WorkItem]:
        """Work not handled yet, oldest first."""
        items: list[WorkItem] = []
        for model in (WhatsAppLog, WhatsAppStatus):
            rows = model._default_manager.using(self.using).filter(handling__in=("pending", "failed", "dead"))
            items.extend(self._item(r) for r in rows.order_by("pk")[:limit])
        items.sort(key=lambda w: w.created_at)
        return items[:limit]

    @_db
    def retry_work(self, work_id: str | None = None) -> int:
        """Make dead or failed work pending again (one, or all)."""
        reset: dict[str, Any] = {
            "handling": "pending",
            "attempts": 0,
            "lease_owner": None,
            "lease_until": None,
            "next_attempt_at": None,
        }
        if work_id is None:
            return sum(
                model._default_manager.using(self.using)
                .filter(handling__in=("failed", "dead"))
                .update(**reset)
                for model in (WhatsAppLog, WhatsAppStatus)
            )
        found = self._rows(work_id)
        if found is None:
            return 0
        return int(found[0].filter(handling__in=("pending", "failed", "dead")).update(**reset))
