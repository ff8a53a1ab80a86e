"""The SQLite store's counters: a value of the key-value space read and changed in one step
(``increment``, ``compare_and_set``); plain reads and writes are :class:`~._sql.SharedSQL`'s."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from . import rules
from ._sqlite_values import SQLitePart

if TYPE_CHECKING:
    pass


class SQLiteCounters(SQLitePart):
    """Counters, for :class:`~eki_whatsapp.store.sqlite.SQLiteStore`."""

    @staticmethod
    def _write_value(db: sqlite3.Connection, namespace: str, key: str, new: Any) -> None:
        db.execute(
            "INSERT INTO kv (namespace, key, value) VALUES (?,?,?) "
            "ON CONFLICT(namespace, key) DO UPDATE SET value=excluded.value",
            (namespace, key, rules.dumps(new)),
        )

    @staticmethod
    def _read_value(db: sqlite3.Connection, namespace: str, key: str) -> Any:
        row = db.execute("SELECT value FROM kv WHERE namespace=? AND key=?", (namespace, key)).fetchone()
        return None if row is None else json.loads(row[0])

    # BEGIN IMMEDIATE takes the file's write lock before the read: read and write are one step for
    # every process on the file.
    def increment(self, namespace: str, key: str, amount: int = 1, *, limit: int | None = None) -> int | None:
        with self._tx() as db:
            after = rules.counter_after(self._read_value(db, namespace, key), amount, limit)
            if after is not None:
                self._write_value(db, namespace, key, after)
            return after

    def compare_and_set(self, namespace: str, key: str, expected: Any, value: Any) -> bool:
        with self._tx() as db:
            if not rules.same_value(self._read_value(db, namespace, key), expected):
                return False
            self._write_value(db, namespace, key, value)
            return True
