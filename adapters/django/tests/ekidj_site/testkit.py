"""Constants and a recording provider shared by the Django adapter's tests."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timezone
from typing import Any

from eki_whatsapp.providers.base import SendReceipt

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
