"""The store contract shipped in ``eki_whatsapp.testing`` runs on the memory and SQLite stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import MemoryStore, SQLiteStore
from eki_whatsapp.store.base import read_values
from eki_whatsapp.testing.store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        store = MemoryStore()
        yield store
        store.close()


class TestSQLiteStore(StoreContract):
    """The default store: a SQLite file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "store.sqlite3")
        yield store
        store.close()


class TestSQLiteInMemoryStore(StoreContract):
    """``SQLiteStore(":memory:")``: no file, no WAL."""

    @pytest.fixture
    def store(self) -> Iterator[SQLiteStore]:
        store = SQLiteStore(":memory:")
        yield store
        store.close()


def test_a_store_of_your_own_without_get_values_is_read_one_value_at_a_time() -> None:
    class OwnStore:  # only the protocol's get_value
        def __init__(self) -> None:
            self.reads: list[tuple[str, str]] = []

        def get_value(self, namespace: str, key: str) -> Any:
            self.reads.append((namespace, key))
            return {"mode": "human"} if namespace == "eki.handoff" else None

    own = OwnStore()
    assert read_values(own, "5215512345678", ("eki.optout", "eki.handoff")) == {
        "eki.handoff": {"mode": "human"}
    }
    assert own.reads == [("eki.optout", "5215512345678"), ("eki.handoff", "5215512345678")]
