"""Django test set-up: the ``ekidj_site`` project, and a bot whose providers record what is sent.

Django is configured when this file is imported, so the adapter tests run in the same pytest
session as the core tests (``pytest tests adapters``) without a ``--ds`` option.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ["DJANGO_SETTINGS_MODULE"] = "ekidj_site.settings"
django.setup()

from ekidj_site.testkit import RecordingProvider  # noqa: E402

from eki_whatsapp import Bot  # noqa: E402
from eki_whatsapp_django import create_bot, reset_bot  # noqa: E402
from eki_whatsapp_django.conf import close_bot  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _database_server(request: pytest.FixtureRequest) -> Iterator[None]:
    """On PostgreSQL (``EKI_DJANGO_DB=postgres``) the server must answer (skip, or fail in CI);
    at the end, connections left by test threads are closed so the test database can be dropped."""
    if os.environ.get("EKI_DJANGO_DB") != "postgres":
        yield
        return
    from eki_whatsapp.testing.services import require_service

    require_service(
        "PostgreSQL", "127.0.0.1", 5432, hint="EKI_DJANGO_DB=postgres runs the Django tests on it"
    )
    request.getfixturevalue("django_db_setup")  # so this teardown runs before the database's
    yield
    from django.db import connection

    with request.getfixturevalue("django_db_blocker").unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def providers() -> dict[str, RecordingProvider]:
    return {
        "meta": RecordingProvider("meta", "106540352242922"),
        "twilio": RecordingProvider("twilio", "14155238886"),
    }


@pytest.fixture
def project_bot(settings: Any, providers: dict[str, RecordingProvider]) -> Iterator[Bot]:
    """The project's bot (test site's echo handler), inline, with recording providers."""
    from ekidj_site.bot import setup

    bot = create_bot(providers=providers, inline=True)
    setup(bot)
    settings.EKI_WHATSAPP_BOT = bot
    yield bot
    reset_bot()
    close_bot(bot)


@pytest.fixture(autouse=True)
def _fresh_bot() -> Iterator[None]:
    yield
    reset_bot()
