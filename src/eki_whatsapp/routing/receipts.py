"""Idempotent sends: the receipts of sends made under an idempotency key.

``ctx.reply`` passes a key per send of a handling (the event and the send's ordinal), so a
handler run again after a crash gets the receipt of its earlier send back instead of answering
twice (docs/deployment.md, "Durable handling"). The receipts live in the store's key-value
space: the smallest durable record that does the job, shared by every process on the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..providers.base import SendReceipt
from ..store.base import Store
from .plan import RoutePlan

__all__ = ["Receipts"]


class Receipts:
    """The receipts of keyed sends, in ``store``'s key-value space ``sent``."""

    SPACE = "sent"

    def __init__(self, store: Store) -> None:
        self.store = store
        self._local = threading.local()  # the receipt this thread stored last

    def get(self, key: str | None) -> SendReceipt | None:
        """The receipt of the send made under ``key`` (``None``: no key, or not sent yet)."""
        if key is None:
            return None
        stored = self.store.get_value(self.SPACE, key)
        if not isinstance(stored, dict):
            return None
        return SendReceipt(
            provider=stored["provider"],
            message_id=stored["message_id"],
            status=stored["status"],
            raw=stored.get("raw") or {},
            attempts=stored.get("attempts", 1),
            message_ids=tuple(stored.get("message_ids") or ()),
            to=stored.get("to"),
            kind=stored.get("kind"),
            sent_at=datetime.fromisoformat(stored["sent_at"]) if stored.get("sent_at") else None,
        )

    def put(self, key: str | None, receipt: SendReceipt) -> None:
        """Remember ``receipt`` as the send made under ``key`` (nothing without a key)."""
        if key is None:
            return
        self.store.set_value(self.SPACE, key, _stored(receipt))
        self._local.stored = receipt

    def once(self, key: str | None, plan: Callable[[], RoutePlan]) -> RoutePlan:
        """The plan of a keyed send: the stored receipt when ``key`` was sent already (the plan is
        then not even made: no opt-out check, no request), else ``plan()`` run (it remembers)."""
        done = self.get(key)
        if done is not None:
            return done
        receipt = yield from plan()
        # The router stores it with the send's log row, in one write (Router.accepted); a plan
        # that did not is remembered here.
        if getattr(self._local, "stored", None) is not receipt:
            self.put(key, receipt)
        return receipt


#: The fields stored as they are; ``raw``, ``message_ids`` and ``sent_at`` are converted.
_PLAIN = ("provider", "message_id", "status", "attempts", "to", "kind")


def _stored(receipt: SendReceipt) -> dict[str, Any]:
    stored: dict[str, Any] = {name: getattr(receipt, name) for name in _PLAIN}
    stored["raw"] = dict(receipt.raw)
    stored["message_ids"] = list(receipt.message_ids)
    stored["sent_at"] = receipt.sent_at.isoformat() if receipt.sent_at is not None else None
    return stored
