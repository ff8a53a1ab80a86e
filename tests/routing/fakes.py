"""In-process fake providers (the Provider protocol, no HTTP) and a settable clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from eki_whatsapp.providers.base import ProviderError, SendReceipt

T0 = datetime(2026, 9, 14, 12, 0, tzinfo=timezone.utc)


class Clock:
    """``clock()`` returns the current fake time; ``advance()`` moves it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class FakeProvider:
    """Records what it sends; fails as scripted.

    ``fail_next`` is a queue of errors raised by the next sends (one per send);
    ``down`` is a predicate of the message: while it returns an error, every send raises it.
    """

    name: str
    number: str
    sent: list[tuple[str, Any]] = field(default_factory=list)
    attempts: int = 0
    fail_next: list[ProviderError] = field(default_factory=list)
    down: Callable[[str, Any], ProviderError | None] | None = None
    parts: int = 1
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def business_number(self) -> str:
        return self.number

    def _send(self, to: str, message: Any) -> SendReceipt:
        self.attempts += 1
        if self.fail_next:
            raise self.fail_next.pop(0)
        if self.down is not None:
            error = self.down(to, message)
            if error is not None:
                raise error
        self.sent.append((to, message))
        prefix = "wamid.FAKE" if self.name == "meta" else "SM"
        ids = tuple(f"{prefix}{next(self._ids):08d}" for _ in range(self.parts))
        return SendReceipt(
            provider=self.name,  # type: ignore[arg-type]
            message_id=ids[0],
            status="accepted",
            raw={"fake": True},
            message_ids=ids,
            to=to,
            kind=str(getattr(message, "kind", "text")),
        )

    def send(self, to: str, message: Any) -> SendReceipt:
        return self._send(to, message)

    async def send_async(self, to: str, message: Any) -> SendReceipt:
        return self._send(to, message)

    def download_media(self, ref: Any) -> bytes:
        raise NotImplementedError

    async def download_media_async(self, ref: Any) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
