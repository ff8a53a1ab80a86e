"""Stores: where the bot keeps its log, statuses, dedup keys, windows, memory and costs."""

from __future__ import annotations

from typing import cast

from .base import LedgerEntry, LogEntry, StatusRecord, Store, UsageRecord
from .memory import MemoryStore
from .postgres import PostgresStore, mask_url
from .sqlite import SQLiteStore

__all__ = [
    "LedgerEntry",
    "LogEntry",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "StatusRecord",
    "Store",
    "UsageRecord",
    "open_store",
]


def open_store(url: str) -> Store:
    """Open a store from ``WHATSAPP_STORE_URL``: ``memory://``, ``sqlite:///path.sqlite3`` or
    ``postgresql://user:password@host:5432/db`` (``postgres://`` too; needs the ``postgres`` extra)."""
    from ..errors import ConfigError

    if url in ("memory://", "memory"):
        return MemoryStore()
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        if path.startswith("/"):
            path = path[1:]  # sqlite:///rel.db → rel.db ; sqlite:////abs.db → /abs.db
        return SQLiteStore(path or "eki_whatsapp.sqlite3")
    if url.startswith(("postgresql://", "postgres://")):
        # Durable handling's methods come to PostgresStore next (the Bot checks for them).
        return cast(Store, PostgresStore(url))
    shown = mask_url(url)
    raise ConfigError(
        f"WHATSAPP_STORE_URL={shown!r} is not understood: use 'memory://', "
        "'sqlite:///relative/file.sqlite3' (four slashes for an absolute path) or "
        "'postgresql://user:password@host:5432/database'"
    )
