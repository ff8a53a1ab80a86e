"""Fixtures for the core webhook tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import Bot, MemoryStore, Settings, SQLiteStore

from .helpers import make_settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    s = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "log.sqlite3")
    yield s
    s.close()


@pytest.fixture
def bot(settings: Settings, store: Any) -> Iterator[Bot]:
    b = Bot(settings, store=store, providers={}, inline=True)
    yield b
    b.close()
