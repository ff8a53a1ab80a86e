"""The outbox: a send the bot accepted is delivered, or kept and retried — never dropped.

Two kinds of send wait here (docs/deployment.md, "The outbox"):

* **queued** — every eligible provider was down (:class:`ProviderDown` after its retries, its
  circuit breaker open, or :class:`RateLimited`). The caller gets a receipt with status
  ``queued`` at once; the sweeper (:class:`~eki_whatsapp.handling.Sweeper`) routes the message
  again when it is due — the policy decides anew, the 24-hour window is checked again (closed
  by then: the fallback template, else ``expired``) — until it goes out or
  ``WHATSAPP_OUTBOX_TTL_SECONDS`` pass.
* **unknown** — the request may have reached the provider (:class:`OutcomeUnknown`: the answer
  was lost after the request left). It is not sent again blindly: a status webhook that echoes
  its correlation key (``StatusUpdate.correlation``) marks it sent (:meth:`Outbox.resolve`);
  only when none comes within ``WHATSAPP_AMBIGUOUS_GRACE_SECONDS`` is it routed again.

A send that finally fails or expires calls the ``on_undeliverable`` hooks once (the process
whose claim ended it). Claims are leases in the store, like handling work, so any number of
processes can deliver from one store. A caller that passes ``queue=False`` gets the error
instead, as before.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..messages import Message
from ..optout import OptedOut
from ..providers.base import (
    OutcomeUnknown,
    ProviderDown,
    ProviderError,
    RateLimited,
    SendReceipt,
    WindowClosed,
)
from ..store import rules
from ..store.base import Lease, LogEntry, OutboxItem, OutboxState
from .kinds import message_kind
from .log import user_key
from .plan import Pending, RoutePlan, run_sync
from .stored import dump_inbound, dump_message, load_inbound, load_message
from .unknown import UnknownSends

if TYPE_CHECKING:
    from ..events import StatusUpdate
    from .router import Router

logger = logging.getLogger("eki_whatsapp.routing")

__all__ = ["QUEUEABLE", "Outbox", "Undelivered", "new_correlation"]

#: Failures a wait may cure: the send is queued instead of raised.
QUEUEABLE: tuple[type[ProviderError], ...] = (ProviderDown, RateLimited)
#: The longest wait between two attempts at a queued send.
MAX_BACKOFF = timedelta(minutes=5)


def new_correlation() -> str:
    """A fresh correlation key: short (it rides in every request), unguessable, URL-safe."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A send that finally failed or expired: what ``on_undeliverable`` hooks receive.

    Attributes:
        id: the outbox id (``o<n>``; ``eki-whatsapp retry`` takes it).
        to: the recipient as given.
        message: the message that was not delivered.
        state: ``expired`` (its TTL passed, or the 24-hour window closed with no fallback
            template) or ``failed`` (a provider refused it).
        reason: why, in words (the error).
        attempts: how many times delivery was tried.
        created_at: when it entered the outbox.
        options: what the send was made with (``category``, ``provider``, ``idempotency_key``...).
    """

    id: str
    to: str
    message: Message | None
    state: Literal["expired", "failed"]
    reason: str
    attempts: int
    created_at: datetime | None
    options: Mapping[str, Any]


UndeliverableHook = Callable[[Undelivered], Any]


class Outbox:
    """The outbox of a :class:`~eki_whatsapp.routing.Router` (see the module docstring)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        #: Called once for each send that finally fails or expires (``bot.on_undeliverable``).
        self.hooks: list[UndeliverableHook] = []
        #: Sends whose outcome is unknown, resolved by their status webhooks.
        self.unknown = UnknownSends(self)

    @property
    def enabled(self) -> bool:
        """Whether the store keeps an outbox (every built-in store does; one of your own may not)."""
        return callable(getattr(self.router.store, "enqueue_send", None))

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.router.settings.whatsapp_outbox_ttl_seconds)

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.router.settings.whatsapp_ambiguous_grace_seconds)

    # --- a new send ----------------------------------------------------------------------------
    def guard(self, req: Pending, plan: RoutePlan, key: str | None) -> RoutePlan:
        """Run ``plan``; a send no provider could take now is queued, one whose outcome is
        unknown waits for its status — each answered with a receipt that says so (status
        ``queued`` / ``unknown``, ``message_id`` the outbox id). With ``req.queue`` off, the
        error is raised (an ``unknown`` send is still kept, so its status resolves its row)."""
        try:
            return (yield from plan)
        except OutcomeUnknown as exc:
            if not self.enabled:
                raise
            receipt = self._keep(req, key, "unknown", exc)
            if not req.queue and receipt.status != "accepted":
                raise
            return receipt
        except QUEUEABLE as exc:
            if not req.queue or not self.enabled:
                raise
            return self._keep(req, key, "queued", exc)

    def _keep(self, req: Pending, key: str | None, state: OutboxState, exc: ProviderError) -> SendReceipt:
        router = self.router
        now = router.clock()
        decision = req.decision
        provider = decision.provider if decision is not None else exc.provider
        unknown = state == "unknown"
        correlation = exc.correlation if isinstance(exc, OutcomeUnknown) else None
        options = {
            "category": req.category,
            "provider": req.explicit,
            "exempt": True,  # checked when it was accepted; a later opt-out is checked again
            "inbound": dump_inbound(req.inbound),
            "extra": dict(req.extra),
            "idempotency_key": key,
            "resend": req.queue,
            "via": provider,  # the provider on its log row until it goes out
        }
        item = OutboxItem(
            to=req.to,
            message=dump_message(req.message),
            options=options,
            expires_at=now + self.ttl,
            state=state,
            correlation=correlation,
            provider=provider if unknown else None,
            next_attempt_at=now + (self.grace if unknown else self._wait(1, exc)),
            last_error=exc.message,
        )
        entry = self.router.log.kept(req, provider, state, decision, error=exc)
        outbox_id = router.store.enqueue_send(item, entry)
        if unknown and self.unknown.resolve_early(item.provider, correlation):
            resolved = router.receipts.get(key) if key is not None else None
            return resolved or SendReceipt(
                provider=provider, message_id=outbox_id, status="accepted", raw={"outbox": outbox_id}
            )
        logger.warning(
            "%s to %s %s (%s): %s",
            message_kind(req.message),
            req.user,
            "is kept until its status says whether it went out" if unknown else "is queued",
            outbox_id,
            exc.message,
        )
        return SendReceipt(
            provider=provider,
            message_id=outbox_id,
            status=state,
            raw={"outbox": outbox_id, "error": type(exc).__name__},
            attempts=int(getattr(exc, "attempts", 0) or 0),
            to=req.to,
            kind=message_kind(req.message),
            sent_at=None,
        )

    def _wait(self, attempts: int, error: ProviderError) -> timedelta:
        """Before the next attempt: the backoff, or longer when the provider asked to wait."""
        wait = self._backoff(attempts)
        if error.retry_after is not None:
            wait = max(wait, timedelta(seconds=error.retry_after))
        return wait

    def _backoff(self, attempts: int) -> timedelta:
        base = self.router.settings.whatsapp_outbox_backoff_seconds
        return min(timedelta(seconds=base * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)

    # --- statuses ------------------------------------------------------------------------------
    def resolve(self, status: StatusUpdate) -> bool:
        """A status that echoes the key of a send whose outcome was unknown: it went out (see
        :meth:`UnknownSends.resolve <eki_whatsapp.routing.unknown.UnknownSends.resolve>`)."""
        return self.unknown.resolve(status)

    # --- delivery (the sweeper) ------------------------------------------------------------------
    def deliver_due(
        self,
        owner: str,
        lease_seconds: float,
        *,
        limit: int = 100,
        hand_over: Callable[[OutboxItem, Lease], None] | None = None,
    ) -> int:
        """Claim the sends that are due and deliver them here — or give each, claimed, to
        ``hand_over`` (a runner that delivers elsewhere: a Celery worker); how many were claimed."""
        if not self.enabled:
            return 0
        now = self.router.clock()
        lease = Lease(owner, now + timedelta(seconds=lease_seconds))
        items = self.router.store.claim_sends(lease, now=now, limit=limit)
        for item in items:
            try:
                (hand_over or self.deliver)(item, lease)
            except Exception:
                logger.exception("delivering %s failed; it is tried again when its lease ends", item.id)
        return len(items)

    def deliver_claimed(self, outbox_id: str, owner: str) -> bool:
        """Deliver a send another process claimed for ``owner`` and handed over (a Celery task):
        only while it is open and still held by ``owner`` (a task delivered again finds it
        final, or claimed by a sweeper under another owner after its lease expired)."""
        item = self.router.store.get_send(outbox_id)
        if item is None or item.state not in rules.OUTBOX_OPEN or item.lease_owner != owner:
            return False
        self.deliver(item, Lease(owner, item.lease_until or self.router.clock()))
        return True

    def deliver(self, item: OutboxItem, lease: Lease) -> None:
        """Route one claimed send again and record what happened."""
        assert item.id is not None
        router = self.router
        now = router.clock()
        options = item.options
        if now >= item.expires_at:
            ttl = router.settings.whatsapp_outbox_ttl_seconds
            self._end(item, lease, "expired", f"not delivered within WHATSAPP_OUTBOX_TTL_SECONDS ({ttl:g} s)")
            return
        if item.state == "unknown" and self.unknown.resolve_early(item.provider, item.correlation):
            return  # a status had come before the send was kept: it went out
        if item.state == "unknown" and not options.get("resend", True):
            reason = "no status arrived within WHATSAPP_AMBIGUOUS_GRACE_SECONDS; not sent again (queue=False)"
            self._end(item, lease, "failed", reason, hook=False)
            return
        try:
            message = load_message(item.message)
        except (TypeError, ValueError) as exc:
            self._end(item, lease, "failed", f"the stored message cannot be read back: {exc}")
            return
        req = router.pending(
            item.to,
            message,
            load_inbound(options.get("inbound")),
            options.get("category"),
            options.get("provider"),
            {**(options.get("extra") or {}), "outbox": item.id},
        )
        req.queue, req.outbox = True, item.id
        try:
            if not options.get("exempt", False):
                router.optouts.check(req.user)
            receipt = run_sync(router.plan(req), router.providers)
        except OptedOut as exc:
            self._end(item, lease, "failed", str(exc), req=req)
        except OutcomeUnknown as exc:
            self._finish(
                item,
                lease,
                "unknown",
                self.router.log.kept(req, exc.provider, "unknown", req.decision, error=exc),
                retry_at=now + self.grace,
                error=exc.message,
                correlation=exc.correlation,
                provider=req.decision.provider if req.decision is not None else exc.provider,
            )
        except QUEUEABLE as exc:
            retry = min(now + self._wait(item.attempts, exc), item.expires_at)
            self._finish(item, lease, "queued", None, retry_at=retry, error=exc.message)
        except WindowClosed as exc:
            reason = (
                "the user's 24-hour window closed while the message waited and no fallback template "
                f"is configured (WHATSAPP_FALLBACK_TEMPLATE): {exc.message}"
            )
            self._end(item, lease, "expired", reason, req=req, error=exc)
        except ProviderError as exc:
            self._end(item, lease, "failed", exc.message, req=req, error=exc)
        else:
            self._sent(item, lease, req, receipt)

    def _sent(self, item: OutboxItem, lease: Lease, req: Pending, receipt: SendReceipt) -> None:
        """It went out: the send's row becomes the first message's row, the rest get rows."""
        router = self.router
        decision = req.decision
        assert decision is not None
        entries = router.log.entries(
            receipt,
            req.to,
            decision.message,
            decision.reason,
            decision.category,
            {**decision.extra, **req.extra},
        )
        if self._finish(item, lease, "sent", entries[0]):
            for entry in entries[1:]:
                router.store.log_outbound(entry)
        else:  # resolved meanwhile by a late status: this copy is a second one, logged as such
            logger.warning("%s went out twice: its earlier send was resolved while it was resent", item.id)
            for entry in entries:
                router.store.log_outbound(replace(entry, extra={**entry.extra, "duplicate_of": item.id}))
        router.receipts.put(item.options.get("idempotency_key"), receipt)
        logger.info("%s delivered through %s as %s", item.id, receipt.provider, receipt.message_id)

    def _finish(
        self,
        item: OutboxItem,
        lease: Lease,
        state: OutboxState,
        entry: LogEntry | None,
        **changes: Any,
    ) -> bool:
        assert item.id is not None
        done = self.router.store.finish_send(item.id, lease.owner, state=state, entry=entry, **changes)
        if not done:
            logger.warning(
                "%s: this process no longer holds it (its lease ended or a status resolved it)", item.id
            )
        return done

    def _end(
        self,
        item: OutboxItem,
        lease: Lease,
        state: Literal["expired", "failed"],
        reason: str,
        *,
        req: Pending | None = None,
        error: ProviderError | None = None,
        hook: bool = True,
    ) -> None:
        """A final outcome: the row says why, the hooks hear of it once."""
        assert item.id is not None
        message: Message | None
        try:
            message = load_message(item.message)
        except (TypeError, ValueError):
            message = None
        if req is None and message is not None:
            req = self.router.pending(item.to, message, None, item.options.get("category"), None)
        entry = None
        if req is not None:
            provider = req.decision.provider if req.decision is not None else str(item.options.get("via", ""))
            entry = self.router.log.kept(req, provider, state, req.decision, error=error, text=reason)
        if not self._finish(item, lease, state, entry, error=reason):
            return
        logger.error("%s to %s was not delivered (%s): %s", item.id, user_key(item.to), state, reason)
        if not hook:
            return
        gone = Undelivered(
            item.id, item.to, message, state, reason, item.attempts, item.created_at, item.options
        )
        for call in list(self.hooks):
            try:
                call(gone)
            except Exception:
                logger.exception("on_undeliverable hook %r failed on %s", call, item.id)
