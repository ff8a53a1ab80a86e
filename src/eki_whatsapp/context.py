"""The :class:`Context` a handler gets besides the event: the bot, and ways to answer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .events import Event, InboundMessage, StatusUpdate
from .handling import idempotency_base

if TYPE_CHECKING:
    from .bot import Bot
    from .messages import Message
    from .providers.base import SendReceipt
    from .store import Store

logger = logging.getLogger("eki_whatsapp")

__all__ = ["Context"]


class Context:
    """What a handler gets besides the event: the bot, and ways to answer.

    ``ctx.reply(...)`` sends on the channel the message came in on.
    """

    __slots__ = ("_key_base", "_sends", "bot", "event", "work_id")

    def __init__(self, bot: Bot, event: Event, work_id: str | None = None) -> None:
        self.bot = bot
        self.event = event
        #: The store's id of this handling (``None`` when the event is handled without a record).
        self.work_id = work_id
        self._key_base = idempotency_base(event, work_id)
        self._sends = 0

    def idempotency_key(self) -> str | None:
        """The key of this handling's next send: the event and the send's ordinal, so the n-th
        reply of a handler run again after a crash has the key it had the first time (and the
        router returns the first receipt instead of sending twice). ``ctx.reply`` takes one
        for every send; call it yourself to pass one to ``bot.send(..., idempotency_key=)``."""
        if self._key_base is None:
            return None
        self._sends += 1
        return f"{self._key_base}#{self._sends}"

    @property
    def message(self) -> InboundMessage | None:
        return self.event if isinstance(self.event, InboundMessage) else None

    @property
    def provider(self) -> str:
        return self.event.provider

    @property
    def user(self) -> str | None:
        """The user of this conversation (sender of a message, recipient of a status)."""
        if isinstance(self.event, InboundMessage):
            return self.event.sender
        if isinstance(self.event, StatusUpdate):
            return self.event.recipient or self.event.recipient_user_id
        return None

    @property
    def store(self) -> Store:
        return self.bot.store

    @property
    def logger(self) -> logging.Logger:
        return logger

    def reply(self, message: Message | str, **options: Any) -> SendReceipt:
        """Answer the user on the inbound channel (a ``str`` becomes a ``Text``)."""
        inbound = self._require_message("reply")
        if "idempotency_key" not in options:
            options["idempotency_key"] = self.idempotency_key()
        return self.bot.router.send(inbound.sender, message, inbound=inbound, **options)

    async def reply_async(self, message: Message | str, **options: Any) -> SendReceipt:
        inbound = self._require_message("reply_async")
        if "idempotency_key" not in options:
            options["idempotency_key"] = self.idempotency_key()
        return await self.bot.router.send_async(inbound.sender, message, inbound=inbound, **options)

    def mark_as_read(self, *, typing: bool = False) -> bool:
        """Mark the message read (Meta; with ``typing=True`` also show the typing indicator).

        Returns ``False`` where the provider has no read receipts (Twilio).
        """
        inbound = self._require_message("mark_as_read")
        provider = self.bot.providers.get(inbound.provider)
        mark = getattr(provider, "mark_as_read", None)
        if mark is None:
            return False
        mark(inbound.id, typing=typing)
        return True

    async def mark_as_read_async(self, *, typing: bool = False) -> bool:
        inbound = self._require_message("mark_as_read_async")
        provider = self.bot.providers.get(inbound.provider)
        mark = getattr(provider, "mark_as_read_async", None)
        if mark is None:
            return False
        await mark(inbound.id, typing=typing)
        return True

    def _require_message(self, what: str) -> InboundMessage:
        if not isinstance(self.event, InboundMessage):
            raise TypeError(f"ctx.{what}() needs an inbound message; this handler got {self.event.kind}")
        return self.event

    def __repr__(self) -> str:
        return f"Context({self.event.kind} {self.provider})"
