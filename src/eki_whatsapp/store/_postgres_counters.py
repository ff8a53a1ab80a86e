"""The PostgreSQL store's counters: a value of the key-value space read and changed in one step,
its row locked meanwhile (``increment``, ``compare_and_set``); plain reads and writes are
:class:`~._sql.SharedSQL`'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import rules
from ._postgres_values import PostgresPart, _jsonb

if TYPE_CHECKING:
    pass


class PostgresCounters(PostgresPart):
    """Counters, for :class:`~eki_whatsapp.store.postgres.PostgresStore`."""

    def _update_value(self, namespace: str, key: str, change: Callable[[Any], Any]) -> Any:
        """Replace the value with ``change(current)`` in one transaction, the row locked meanwhile
        (``change`` returns ``rules.KEEP`` to leave it). Returns what ``change`` returned."""
        with self._tx() as conn:
            while True:
                row = conn.execute(
                    "SELECT value FROM kv WHERE namespace=%s AND key=%s FOR UPDATE", (namespace, key)
                ).fetchone()
                new = change(None if row is None else row[0])
                if new is rules.KEEP:
                    return new
                if row is not None:
                    conn.execute(
                        "UPDATE kv SET value=%s WHERE namespace=%s AND key=%s", (_jsonb(new), namespace, key)
                    )
                    return new
                # Absent: insert, unless another process just did (then lock its row and redo).
                if conn.execute(
                    "INSERT INTO kv (namespace, key, value) VALUES (%s,%s,%s) ON CONFLICT DO NOTHING "
                    "RETURNING 1",
                    (namespace, key, _jsonb(new)),
                ).fetchone():
                    return new

    def increment(self, namespace: str, key: str, amount: int = 1, *, limit: int | None = None) -> int | None:
        result = self._update_value(namespace, key, rules.increment_change(amount, limit))
        return None if result is rules.KEEP else int(result)

    def compare_and_set(self, namespace: str, key: str, expected: Any, value: Any) -> bool:
        return self._update_value(namespace, key, rules.swap_change(expected, value)) is not rules.KEEP
