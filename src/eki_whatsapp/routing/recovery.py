"""Late-failure recovery: failures that arrive after the send, and texts that failed part-way.

A status webhook may report, minutes after the provider accepted a message, that it failed.
:meth:`Recovery.on_status` prices every status in the ledger and, once per message, answers a
window failure (Meta 131047, Twilio 63016) of a free-form message with the fallback template, or
fails a text or a template over to another provider when the failure is one another provider
could avoid — an outage, or a message undeliverable from that number (Meta 131026, Twilio
63024), under the same reachability rules as a failure at send time; the rules are
:func:`~eki_whatsapp.routing.policy.after_late_failure`. :meth:`partial_success`
keeps a long text that failed part-way from reaching the user twice.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..events import StatusUpdate
from ..formatting import split
from ..messages import Message, Template, Text
from ..providers.base import ProviderError, SendReceipt, Undeliverable, WindowClosed
from ..store.base import LogEntry
from .plan import Pending
from .policy import Decision, after_late_failure

if TYPE_CHECKING:
    from .router import Router

logger = logging.getLogger("eki_whatsapp.routing")

__all__ = ["Recovery"]

_KV = "eki.routing"


class Recovery:
    """The late results of a :class:`~eki_whatsapp.routing.Router`'s sends."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def on_status(self, status: StatusUpdate) -> None:
        """Price the message from the status, and recover from a late failure (once per message)."""
        if status.pricing is None and not status.failed:
            return  # nothing to price, nothing to recover: the common "read"/"delivered" case
        router = self.router
        row = router.store.get_message(status.provider, status.message_id)
        try:
            router.costs.record_status(
                status,
                category=row.category if row is not None else None,
                sent_at=row.timestamp if row is not None and row.direction == "out" else None,
            )
        except Exception:
            logger.exception("pricing status %s of %s failed", status.status, status.message_id)
        if not status.failed or row is None or row.direction != "out" or status.error is None:
            return
        guard = f"late:{status.provider}:{status.message_id}"
        if router.store.get_value(_KV, guard):
            return
        user = row.recipient or status.recipient
        if not user:
            return
        step = after_late_failure(
            status.error,
            kind=row.type,
            fallback=bool(row.extra.get("fallback_template")),
            has_text=bool(row.text) if row.type == "text" else "template" in row.extra,
            policy=router.settings.whatsapp_provider,
        )
        if step == "ignore":
            return
        router.store.set_value(_KV, guard, True)
        if step == "fallback":
            self._fallback(status, row, user)
        else:
            self._failover(status, status.error, row, user)

    def _fallback(self, status: StatusUpdate, row: LogEntry, user: str) -> None:
        router = self.router
        template = router.fallback_for(user, row.text)
        if template is None:
            logger.error(
                "%s: message %s to %s failed because the 24-hour window is closed and no fallback "
                "template is configured (set WHATSAPP_FALLBACK_TEMPLATE)",
                status.provider,
                status.message_id,
                user,
            )
            return
        extra = {"replaces": status.message_id, "late": True}
        decision = router.fallback.decision(status.provider, "fallback-template", template, False, extra)
        pending = Pending(user, user, template, decision.category, None, status.provider, router.clock())
        self._send(pending, decision)

    def _failover(self, status: StatusUpdate, error: ProviderError, row: LogEntry, user: str) -> None:
        router = self.router
        if isinstance(error, Undeliverable):
            router.breakers[status.provider].success()  # the provider works; this user is not reached there
        else:
            router.breakers[status.provider].failure(router.clock())
        message: Message = Text(row.text or "")
        if row.type == "template":
            message = Template(**row.extra["template"])
        pending = router.pending(user, message, None, row.category, None)
        pending.tried.append((status.provider, False))
        try:
            nxt = router.next_decision(pending, error)
        except WindowClosed:
            nxt = None
        if nxt is None:
            logger.error(
                "message %s failed late (%s) and no provider can take it over", row.message_id, error
            )
            return
        self._send(pending, replace(nxt, extra={**nxt.extra, "replaces": status.message_id, "late": True}))

    def _send(self, pending: Pending, decision: Decision) -> SendReceipt | None:
        """Send an already decided message from a status hook (errors are logged, not raised)."""
        router = self.router
        try:
            receipt = router.providers[decision.provider].send(pending.to, decision.message)
        except ProviderError as exc:
            router.log.failure(
                decision.provider,
                pending.to,
                decision.message,
                decision.reason,
                exc,
                decision.category,
                extra=decision.extra,
            )
            logger.error("late %s to %s failed: %s", decision.reason, pending.user, exc)
            return None
        return router.accepted(pending, decision, receipt)

    def partial_success(self, pending: Pending, decision: Decision, sent: tuple[str, ...]) -> Text | None:
        """Log and price the parts of a split text that were accepted; return a ``Text`` of the
        rest (``None`` when nothing is left or the message was not a text)."""
        router = self.router
        message = decision.message
        if not isinstance(message, Text):
            return None
        provider = router.providers[decision.provider]
        parts = split(message.body, int(getattr(provider, "text_limit", 4096)))
        router.log.parts(
            decision.provider, pending.to, parts, sent, decision.reason, decision.category, decision.extra
        )
        try:
            router.costs.record_send(
                decision.provider,
                sent,
                pending.user,
                decision.category,
                business=provider.business_number,
                in_window=decision.in_window,
                at=pending.at,
            )
        except Exception:
            logger.exception("pricing the parts sent before a failure failed")
        position = 0
        for part in parts[: len(sent)]:
            found = message.body.find(part, position)
            position = found + len(part) if found >= 0 else position
        rest = message.body[position:].strip()
        return Text(rest, preview_url=message.preview_url) if rest else None
