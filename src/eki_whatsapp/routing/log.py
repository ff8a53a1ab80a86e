"""The outbound log: one row per message id the router sent, or one per failed attempt."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..addresses import normalize
from ..messages import Message, Template
from ..providers.base import OutcomeUnknown, Provider, ProviderError, SendReceipt
from ..store.base import LogEntry, Store
from .kinds import message_kind, message_text

if TYPE_CHECKING:
    from .plan import Pending
    from .policy import Decision

__all__ = ["OutboundLog", "user_key"]


def resendable(message: Message) -> dict[str, Any] | None:
    """A template as plain values for its log row, so a failure reported later can send it again
    through another provider (``None``: not a template, or one with parts beyond plain text)."""
    if not isinstance(message, Template) or message.header is not None or message.buttons:
        return None
    body = message.body
    if isinstance(body, Mapping):
        if not all(isinstance(v, str) for v in body.values()):
            return None
        values: Any = dict(body)
    elif all(isinstance(v, str) for v in body):
        values = list(body)
    else:
        return None
    return {
        "name": message.name,
        "language": message.language,
        "body": values,
        "content_sid": message.content_sid,
        "content_variables": dict(message.content_variables) if message.content_variables else None,
    }


def user_key(to: str) -> str:
    """The user as stored: digits without ``whatsapp:``/``+``, or the BSUID as given."""
    return normalize(to)


class OutboundLog:
    """Writes the router's rows (with the ``reason`` for each choice) to the Store."""

    def __init__(
        self, store: Store, providers: Mapping[str, Provider], clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.providers = providers
        self.clock = clock

    def success(self, receipt: SendReceipt, req: Pending, decision: Decision) -> None:
        """One ``accepted`` row per message id of the receipt (a long text has several), for the
        message ``decision`` sent of ``req``."""
        extra = {**decision.extra, **req.extra}
        for entry in self.entries(
            receipt, req.to, decision.message, decision.reason, decision.category, extra
        ):
            self.store.log_outbound(entry)

    def entries(
        self,
        receipt: SendReceipt,
        to: str,
        message: Message,
        reason: str,
        category: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[LogEntry]:
        """The rows :meth:`success` writes."""
        provider = self.providers[receipt.provider]
        ids = receipt.message_ids or (receipt.message_id,)
        entries = []
        for index, message_id in enumerate(ids):
            row_extra = dict(extra or {})
            if receipt.rendering is not None:  # e.g. Twilio buttons: real ones or numbered text
                row_extra["rendering"] = receipt.rendering
            if len(ids) > 1:
                row_extra.update(part=index + 1, parts=len(ids))
            again = resendable(message)
            if again is not None:
                row_extra["template"] = again
            entries.append(
                LogEntry(
                    direction="out",
                    provider=receipt.provider,
                    type=receipt.kind or message_kind(message),
                    message_id=message_id,
                    sender=provider.business_number,
                    recipient=user_key(to),
                    text=message_text(message),
                    status=receipt.status or "accepted",
                    raw=dict(receipt.raw),
                    timestamp=receipt.sent_at or self.clock(),
                    attempts=receipt.attempts,
                    reason=reason,
                    category=category,
                    extra=row_extra,
                )
            )
        return entries

    def kept(
        self,
        req: Pending,
        provider: str,
        status: str,
        decision: Decision | None,
        *,
        error: ProviderError | None = None,
        text: str | None = None,
    ) -> LogEntry:
        """The row of a send the outbox keeps, as it stands (no provider message id). Its
        reason says why it waits; ``extra.choice``, why that provider was tried (a send that a
        status resolves keeps this row)."""
        sender = self.providers.get(provider)
        message = decision.message if decision is not None else req.message
        reason = f"{status}:{type(error).__name__}" if error is not None else status
        return LogEntry(
            direction="out",
            provider=provider,
            type=message_kind(message),
            sender=sender.business_number if sender is not None else None,
            recipient=user_key(req.to),
            text=message_text(message),
            status=status,
            error_code=error.code if error is not None else None,
            error_message=text or (error.message if error is not None else None),
            timestamp=self.clock(),
            reason=reason,
            category=decision.category if decision is not None else req.category,
            extra={
                **({"choice": decision.reason} if decision is not None else {}),
                **req.extra,
                **({"correlation": error.correlation} if isinstance(error, OutcomeUnknown) else {}),
            },
        )

    def failure(
        self,
        name: str,
        to: str,
        message: Message,
        reason: str,
        exc: ProviderError,
        category: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """One ``failed`` row with the provider's error code and message."""
        provider = self.providers.get(name)
        self.store.log_outbound(
            LogEntry(
                direction="out",
                provider=name,
                type=message_kind(message),
                sender=provider.business_number if provider is not None else None,
                recipient=user_key(to),
                text=message_text(message),
                status="failed",
                error_code=exc.code,
                error_message=exc.message,
                raw=exc.raw if isinstance(exc.raw, dict) else None,
                timestamp=self.clock(),
                attempts=int(getattr(exc, "attempts", 1) or 1),
                reason=reason,
                category=category,
                extra={**(extra or {}), "error": type(exc).__name__},
            )
        )

    def parts(
        self,
        name: str,
        to: str,
        parts: Sequence[str],
        sent: Sequence[str],
        reason: str,
        category: str | None,
        extra: Mapping[str, Any],
    ) -> None:
        """``accepted`` rows for the parts of a split text that went out before a failure."""
        sender = self.providers[name].business_number
        for index, message_id in enumerate(sent):
            self.store.log_outbound(
                LogEntry(
                    direction="out",
                    provider=name,
                    type="text",
                    message_id=message_id,
                    sender=sender,
                    recipient=user_key(to),
                    text=parts[index] if index < len(parts) else None,
                    status="accepted",
                    timestamp=self.clock(),
                    reason=reason,
                    category=category,
                    extra={**extra, "part": index + 1, "parts": len(parts), "partial": True},
                )
            )
