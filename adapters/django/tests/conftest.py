"""Django test set-up: the ``ekidj_site`` project, and a bot whose providers record what is sent.

Django is configured when this file is imported, so the adapter tests run in the same pytest
session as the core tests (``pytest tests adapters``) without a ``--ds`` option.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import django
import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ekidj_site.settings")
django.setup()

from eki_whatsapp import Bot  # noqa: E402
from eki_whatsapp.providers.base import SendReceipt  # noqa: E402
from eki_whatsapp_django import create_bot, reset_bot  # noqa: E402

META_SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "verify-me"
WEBHOOK = "/webhook/whatsapp/"
PUBLIC_URL = "http://testserver/webhook/whatsapp/"


class RecordingProvider:
    """A provider that accepts every message and remembers it (no network)."""

    _ids = itertools.count(1)

    def __init__(self, name: Any, business_number: str) -> None:
        self.name = name
        self._business_number = business_number
        self.sent: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def business_number(self) -> str:
        return self._business_number

    def send(self, to: str, message: Any) -> SendReceipt:
        with self._lock:
            self.sent.append((to, message))
            number = next(self._ids)
        prefix = "wamid.OUT" if self.name == "meta" else "SMout"
        return SendReceipt(
            provider=self.name,
            message_id=f"{prefix}{number:06d}",
            status="accepted" if self.name == "meta" else "queued",
            raw={"id": number},
            to=to,
            kind=getattr(message, "kind", "text"),
            sent_at=datetime.now(timezone.utc),
        )

    async def send_async(self, to: str, message: Any) -> SendReceipt:
        return self.send(to, message)

    def download_media(self, ref: Any) -> bytes:
        return b""

    async def download_media_async(self, ref: Any) -> bytes:
        return b""

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


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


@pytest.fixture(autouse=True)
def _fresh_bot() -> Iterator[None]:
    yield
    reset_bot()
