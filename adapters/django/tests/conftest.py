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
