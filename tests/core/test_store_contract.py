"""The store contract shipped in ``eki_whatsapp.testing`` runs on the memory and SQLite stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eki_whatsapp import MemoryStore, SQLiteStore
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
