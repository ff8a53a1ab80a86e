"""The :class:`Router`: which provider sends each outbound message, and the outbound log.

Every outbound message — ``ctx.reply()`` and ``bot.send()`` alike — goes through
:meth:`Router.send`, which picks a provider, sends, and writes the log row with the reason
for the choice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .events import InboundMessage, StatusUpdate
from .providers.base import Provider, ProviderError, SendReceipt
from .store.base import LogEntry, Store

if TYPE_CHECKING:
    from .bot import Bot
    from .settings import Settings

logger = logging.getLogger("eki_whatsapp.routing")


def coerce_message(message: Any) -> Any:
    """A ``str`` becomes a :class:`~eki_whatsapp.messages.Text`; message models pass through."""
    if isinstance(message, str):
        from .messages import Text

        return Text(message)
    return message


def message_kind(message: Any) -> str:
    return str(getattr(message, "kind", None) or type(message).__name__.lower())


def message_text(message: Any) -> str | None:
    for attr in ("body", "text", "caption"):
        value = getattr(message, attr, None)
        if isinstance(value, str):
            return value
    return None


class Router:
    """Chooses the provider for each outbound message and logs the send."""

    def __init__(self, providers: Mapping[str, Provider], store: Store, settings: Settings) -> None:
        self.providers = providers
        self.store = store
        self.settings = settings

    @classmethod
    def from_bot(cls, bot: Bot) -> Router:
        return cls(bot.providers, bot.store, bot.settings)

    @property
    def costs(self) -> Any:
        return None

    def choose(
        self,
        to: str,
        message: Any,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
    ) -> tuple[str, str]:
        """``(provider name, reason)`` for this message."""
        if provider is not None:
            return self._require(provider), "explicit"
        if inbound is not None and inbound.provider in self.providers:
            return inbound.provider, "reply-channel"
        for name in self.settings.enabled_providers:
            if name in self.providers:
                return name, "policy"
        raise ConfigError(
            "no provider can send: configure META_* or TWILIO_* credentials (see docs/configuration.md)"
        )

    def _require(self, name: str) -> str:
        if name not in self.providers:
            raise ConfigError(f"provider {name!r} is not configured (have: {sorted(self.providers)})")
        return name

    def send(
        self,
        to: str,
        message: Any,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
    ) -> SendReceipt:
        message = coerce_message(message)
        name, reason = self.choose(to, message, inbound=inbound, category=category, provider=provider)
        try:
            receipt = self.providers[name].send(to, message)
        except ProviderError as exc:
            self._log_failure(name, to, message, reason, exc, category)
            raise
        self._log_success(receipt, to, message, reason, category)
        return receipt

    async def send_async(
        self,
        to: str,
        message: Any,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
    ) -> SendReceipt:
        message = coerce_message(message)
        name, reason = self.choose(to, message, inbound=inbound, category=category, provider=provider)
        try:
            receipt = await self.providers[name].send_async(to, message)
        except ProviderError as exc:
            self._log_failure(name, to, message, reason, exc, category)
            raise
        self._log_success(receipt, to, message, reason, category)
        return receipt

    def on_status(self, status: StatusUpdate) -> None:
        """Late results of sends (e.g. a window failure) — see the routing policy."""
        return None

    # --- outbound log ---------------------------------------------------------------------------
    def _log_success(
        self, receipt: SendReceipt, to: str, message: Any, reason: str, category: str | None
    ) -> None:
        provider = self.providers[receipt.provider]
        ids = receipt.message_ids or (receipt.message_id,)
        for index, message_id in enumerate(ids):
            self.store.log_outbound(
                LogEntry(
                    direction="out",
                    provider=receipt.provider,
                    type=receipt.kind or message_kind(message),
                    message_id=message_id,
                    sender=provider.business_number,
                    recipient=_user_key(to),
                    text=message_text(message),
                    status=receipt.status or "accepted",
                    raw=dict(receipt.raw),
                    timestamp=receipt.sent_at or datetime.now(timezone.utc),
                    attempts=receipt.attempts,
                    reason=reason,
                    category=category,
                    extra={"part": index + 1, "parts": len(ids)} if len(ids) > 1 else {},
                )
            )

    def _log_failure(
        self,
        name: str,
        to: str,
        message: Any,
        reason: str,
        exc: ProviderError,
        category: str | None,
    ) -> None:
        provider = self.providers[name]
        self.store.log_outbound(
            LogEntry(
                direction="out",
                provider=name,
                type=message_kind(message),
                sender=provider.business_number,
                recipient=_user_key(to),
                text=message_text(message),
                status="failed",
                error_code=exc.code,
                error_message=exc.message,
                raw=exc.raw if isinstance(exc.raw, dict) else None,
                timestamp=datetime.now(timezone.utc),
                attempts=int(getattr(exc, "attempts", 1) or 1),
                reason=reason,
                category=category,
                extra={"error": type(exc).__name__},
            )
        )


def _user_key(to: str) -> str:
    """The user as stored: digits without ``whatsapp:``/``+``, or the BSUID as given."""
    text = to.strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    plain = text.removeprefix("+").replace(" ", "").replace("-", "")
    return plain if plain.isdigit() else text
