"""Shared test fixtures. PostgreSQL: the local server (127.0.0.1:5432, trust auth, database ``test``).

Every test run gets schemas of its own (named after the process), dropped at the end, so that
parallel runs and other engineers on the same server never see each other's rows. Without a
server the tests skip with the reason (and fail under ``EKI_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from eki_whatsapp.testing.services import require_module, require_service

HOST, PORT = "127.0.0.1", 5432
#: The server every PostgreSQL test uses; ``EKI_TEST_POSTGRES_URL`` points them elsewhere.
BASE_URL = os.environ.get("EKI_TEST_POSTGRES_URL", f"postgresql://postgres@{HOST}:{PORT}/test")

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """The test server's URL (skips, or fails under EKI_REQUIRE_SERVICES=1, when it is down)."""
    require_service("PostgreSQL", HOST, PORT, hint="start it, or set EKI_TEST_POSTGRES_URL")
    require_module("psycopg", hint="pip install 'eki-whatsapp[postgres]'")
    return BASE_URL


def drop_schema(base_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def new_schema(pg_base_url: str) -> Iterator[Callable[[], str]]:
    """Makes schema names unique to this run; drops every one made at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name = f"eki_test_{os.getpid()}_{next(_numbers)}"
        made.append(name)
        return name

    yield make
    for name in made:
        drop_schema(pg_base_url, name)


@pytest.fixture
def pg_schema(new_schema: Callable[[], str]) -> str:
    """A schema name of this test's own (dropped at the end of the run)."""
    return new_schema()


@pytest.fixture
def pg_url(pg_base_url: str, pg_schema: str) -> str:
    """A store URL on this test's own schema."""
    return f"{pg_base_url}?schema={pg_schema}"
