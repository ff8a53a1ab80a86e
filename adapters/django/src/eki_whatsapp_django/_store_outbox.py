"""The Django store's outbox: sends kept until they go out (rules: "Outbox" in
:mod:`eki_whatsapp.store.rules`)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import F, Q

from eki_whatsapp.store import rules
from eki_whatsapp.store.base import Lease, LogEntry, OutboxItem, SendOutcome, StatusRecord, utcnow

from ._store_db import StoreBase, _db, _due, _from_db, _status, _to_db, record_of
from .models import WhatsAppLog, WhatsAppOutbox, WhatsAppStatus

if TYPE_CHECKING:
    from typing_extensions import Unpack


class DjangoOutbox(StoreBase):
    """The outbox, for :class:`~eki_whatsapp_django.store.DjangoStore`."""

    # --- outbox ------------------------------------------------------------------------------
    @staticmethod
    def _send(row: WhatsAppOutbox) -> OutboxItem:
        return record_of(
            OutboxItem,
            row,
            id=rules.outbox_id(int(row.pk)),
            to=row.recipient,
            options=row.options or {},
            next_attempt_at=_from_db(row.next_attempt_at),
            expires_at=_from_db(row.expires_at) or utcnow(),
            lease_until=_from_db(row.lease_until),
            created_at=_from_db(row.created_at),
            updated_at=_from_db(row.updated_at),
        )

    def _sends(self) -> models.QuerySet[WhatsAppOutbox]:
        return WhatsAppOutbox.objects.using(self.using)

    @_db
    def enqueue_send(self, item: OutboxItem, entry: LogEntry) -> str:
        """The send's log row and the send, in one transaction."""
        now = _to_db(utcnow())
        with self._atomic():
            log = self._create_log(entry)
            row = self._sends().create(
                state=item.state,
                recipient=item.to,
                message=rules.json_copy(dict(item.message)),
                options=rules.json_copy(dict(item.options)) or {},
                correlation=item.correlation,
                provider=item.provider,
                attempts=item.attempts,
                next_attempt_at=_to_db(item.next_attempt_at),
                expires_at=_to_db(item.expires_at),
                lease_owner=item.lease_owner,
                lease_until=_to_db(item.lease_until),
                last_error=item.last_error,
                log_id=log.pk,
                created_at=now,
                updated_at=now,
            )
        return rules.outbox_id(int(row.pk))

    @staticmethod
    def _send_claimable(now: datetime) -> Q:
        """rules.send_claimable as a filter."""
        return Q(state__in=rules.OUTBOX_OPEN) & _due(now)

    @_db
    def claim_sends(self, lease: Lease, *, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Claim what is due, row by row with one conditional UPDATE each (one claimer wins)."""
        claimed: list[OutboxItem] = []
        due = self._sends().filter(self._send_claimable(now)).order_by("pk")
        for pk in due.values_list("pk", flat=True)[:limit]:
            rows = self._sends().filter(pk=pk).filter(self._send_claimable(now))
            if rows.update(
                lease_owner=lease.owner,
                lease_until=_to_db(lease.until),
                attempts=F("attempts") + 1,
                updated_at=_to_db(utcnow()),
            ):
                claimed.append(self._send(self._sends().get(pk=pk)))
        return claimed

    def _rewrite(self, log_id: int, entry: LogEntry) -> None:
        """A send's log row, rewritten to its outcome (rules.rewritten_row)."""
        early: list[StatusRecord] = []
        if entry.message_id is not None:
            received = WhatsAppStatus.objects.using(self.using).filter(
                provider=entry.provider, message_id=entry.message_id
            )
            early = [_status(r) for r in received.order_by("id")]
        fields = rules.rewritten_row(entry, early)
        fields["raw"] = rules.json_copy(fields["raw"])
        fields["extra"] = rules.json_copy(fields["extra"]) or {}
        fields["timestamp"] = _to_db(fields["timestamp"])
        fields["updated_at"] = _to_db(utcnow())
        WhatsAppLog.objects.using(self.using).filter(pk=log_id).update(**fields)

    @_db
    def finish_send(self, outbox_id: str, owner: str, **outcome: Unpack[SendOutcome]) -> bool:
        """End ``owner``'s attempt (only while it holds the send) and rewrite its log row."""
        key = rules.parse_outbox_id(outbox_id)
        if key is None:
            return False
        with self._atomic():
            changed = (
                self._sends()
                .filter(pk=key, lease_owner=owner, state__in=rules.OUTBOX_OPEN)
                .update(
                    state=outcome["state"],
                    lease_owner=None,
                    lease_until=None,
                    next_attempt_at=_to_db(outcome.get("retry_at")),
                    last_error=outcome.get("error"),
                    correlation=outcome.get("correlation"),
                    provider=outcome.get("provider"),
                    updated_at=_to_db(utcnow()),
                )
            )
            if not changed:
                return False
            log_id = self._sends().filter(pk=key).values_list("log_id", flat=True).first()
            entry = outcome.get("entry")
            if entry is not None and log_id is not None:
                self._rewrite(log_id, entry)
        if entry is not None and entry.message_id is not None:
            self._reconcile(entry.provider, entry.message_id)
        return True

    @_db
    def resolve_send(self, provider: str, correlation: str, message_id: str) -> OutboxItem | None:
        """The unknown send with that key is sent; its log row gets the message id."""
        with self._atomic():
            row = (
                self._sends()
                .select_for_update()
                .filter(correlation=correlation, provider=provider, state="unknown")
                .order_by("pk")
                .first()
            )
            if row is None:
                return None
            item = self._send(row)
            self._sends().filter(pk=row.pk, state="unknown").update(
                state="sent", lease_owner=None, lease_until=None, updated_at=_to_db(utcnow())
            )
            logged = WhatsAppLog.objects.using(self.using).filter(pk=row.log_id).first()
            if logged is not None:
                entry = self._entry(logged)
                entry = dataclasses.replace(
                    entry, provider=provider, message_id=message_id, status="accepted"
                )
                self._rewrite(int(logged.pk), entry)
        # A status committed while the row was rewritten found no row with this message id yet:
        # merge again now that the rewrite is committed (as log_outbound does).
        self._reconcile(provider, message_id)
        return item

    @_db
    def get_send(self, outbox_id: str) -> OutboxItem | None:
        """One send by id."""
        key = rules.parse_outbox_id(outbox_id)
        row = None if key is None else self._sends().filter(pk=key).first()
        return None if row is None else self._send(row)

    @_db
    def pending_sends(self, *, limit: int = 100) -> list[OutboxItem]:
        """Sends not final yet, oldest first."""
        rows = self._sends().filter(state__in=rules.OUTBOX_OPEN).order_by("pk")[:limit]
        return [self._send(r) for r in rows]

    @_db
    def retry_send(self, outbox_id: str | None = None, *, expires_at: datetime) -> int:
        """Make sends due now; failed and expired ones are queued again until ``expires_at``."""
        rows = self._sends().filter(state__in=rules.OUTBOX_RETRYABLE)
        if outbox_id is not None:
            key = rules.parse_outbox_id(outbox_id)
            if key is None:
                return 0
            rows = rows.filter(pk=key)
        reset: dict[str, Any] = {
            "attempts": 0,
            "next_attempt_at": None,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": _to_db(utcnow()),
        }
        with self._atomic():
            # The waiting ones first: the ended ones become waiting ones on the next line.
            waiting: int = rows.filter(state__in=rules.OUTBOX_OPEN).update(**reset)
            reopened: int = rows.exclude(state__in=rules.OUTBOX_OPEN).update(
                state="queued", expires_at=_to_db(expires_at), **reset
            )
            return waiting + reopened
