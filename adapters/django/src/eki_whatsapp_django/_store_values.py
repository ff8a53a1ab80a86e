"""The Django store's values: agent memory, model usage, the cost ledger, the key-value space and
its counters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError

from eki_whatsapp.store import rules
from eki_whatsapp.store.base import LedgerEntry, UsageRecord, utcnow

from .models import WhatsAppLedger, WhatsAppMemory, WhatsAppUsage, WhatsAppValue

if TYPE_CHECKING:
    pass

from ._store_db import StoreBase, _db, _decimal, _from_db, _to_db, columns_of, record_of


class DjangoValues(StoreBase):
    """Memory, usage, ledger and key-value space, for :class:`~eki_whatsapp_django.store.DjangoStore`."""

    # --- memory / usage ------------------------------------------------------------------------
    @_db
    def load_memory(self, key: str) -> list[dict[str, Any]]:
        """The stored memory items of ``key`` (empty when none)."""
        items = (
            WhatsAppMemory.objects.using(self.using).filter(key=key).values_list("items", flat=True).first()
        )
        return list(items) if items else []

    @_db
    def save_memory(self, key: str, items: list[dict[str, Any]]) -> None:
        """Replace the memory items of ``key``."""
        WhatsAppMemory.objects.using(self.using).update_or_create(
            key=key, defaults={"items": rules.json_copy(items), "updated_at": _to_db(utcnow())}
        )

    @_db
    def record_usage(self, record: UsageRecord) -> None:
        """Add the model usage of one call."""
        cost = None if record.cost is None else str(record.cost)
        WhatsAppUsage.objects.using(self.using).create(**columns_of(record, cost=cost, at=_to_db(record.at)))

    @_db
    def usage(self, *, user: str | None = None, since: datetime | None = None) -> list[UsageRecord]:
        """Usage records, oldest first, of a user and/or since a moment."""
        rows = WhatsAppUsage.objects.using(self.using).all()
        if user is not None:
            rows = rows.filter(user=user)
        if since is not None:
            rows = rows.filter(at__gte=_to_db(since))
        return [
            record_of(UsageRecord, r, cost=_decimal(r.cost), at=_from_db(r.at) or utcnow())
            for r in rows.order_by("id")
        ]

    # --- ledger ------------------------------------------------------------------------------
    @_db
    def add_ledger(self, entry: LedgerEntry) -> bool:
        """Add a ledger entry; ``False`` if (provider, message id, source) is already there."""
        amount = None if entry.amount is None else str(entry.amount)
        columns = columns_of(entry, at=_to_db(entry.at), month=entry.month, amount=amount)
        return self._create_once(WhatsAppLedger, **columns)

    @_db
    def ledger(self, *, month: str | None = None) -> list[LedgerEntry]:
        """Entries of a month (``"2026-11"``), or all, oldest first."""
        rows = WhatsAppLedger.objects.using(self.using).all()
        if month is not None:
            rows = rows.filter(month=month)
        return [
            record_of(LedgerEntry, r, at=_from_db(r.at) or utcnow(), amount=_decimal(r.amount))
            for r in rows.order_by("at", "id")
        ]

    # --- kv ----------------------------------------------------------------------------------
    @_db
    def get_value(self, namespace: str, key: str) -> Any:
        """The JSON value stored under ``(namespace, key)``, or ``None``."""
        return (
            WhatsAppValue.objects.using(self.using)
            .filter(namespace=namespace, key=key)
            .values_list("value", flat=True)
            .first()
        )

    @_db
    def get_values(self, key: str, namespaces: Sequence[str]) -> dict[str, Any]:
        """The values stored under ``key`` in each of ``namespaces`` that has one (one query)."""
        rows = WhatsAppValue.objects.using(self.using).filter(key=key, namespace__in=list(namespaces))
        return {
            namespace: value
            for namespace, value in rows.values_list("namespace", "value")
            if value is not None
        }

    @_db
    def set_value(self, namespace: str, key: str, value: Any) -> None:
        """Store a JSON value under ``(namespace, key)``."""
        WhatsAppValue.objects.using(self.using).update_or_create(
            namespace=namespace, key=key, defaults={"value": rules.json_copy(value)}
        )

    def _update_value(self, namespace: str, key: str, change: Callable[[Any], Any]) -> Any:
        """Replace the value with ``change(current)`` while its row is locked (``rules.KEEP``: leave it);
        returns what ``change`` returned. An absent row is created, or, when another process just
        created it, locked and read again."""
        values = WhatsAppValue.objects.using(self.using)
        while True:
            with self._atomic():
                row = values.select_for_update().filter(namespace=namespace, key=key).first()
                new = change(None if row is None else row.value)
                if new is rules.KEEP:
                    return new
                if row is not None:
                    values.filter(pk=row.pk).update(value=rules.json_copy(new))
                    return new
                try:
                    with self._atomic():
                        values.create(namespace=namespace, key=key, value=rules.json_copy(new))
                except IntegrityError:
                    continue
                return new

    @_db
    def increment(self, namespace: str, key: str, amount: int = 1, *, limit: int | None = None) -> int | None:
        """Add ``amount`` to the counter (``None`` and no change when that would pass ``limit``)."""

        result = self._update_value(namespace, key, rules.increment_change(amount, limit))
        return None if result is rules.KEEP else int(result)

    @_db
    def compare_and_set(self, namespace: str, key: str, expected: Any, value: Any) -> bool:
        """Store ``value`` only if the stored value is ``expected`` (``None``: absent)."""
        return self._update_value(namespace, key, rules.swap_change(expected, value)) is not rules.KEEP
