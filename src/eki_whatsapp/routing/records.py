"""What the router records of each send: the circuit breaker's verdict, the price in the cost
ledger, the log row, and the receipt under the send's idempotency key (one batched write)."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from ..providers.base import SendReceipt
from ..store.base import batch
from .plan import Pending
from .policy import Decision

if TYPE_CHECKING:
    from .router import Router

logger = logging.getLogger("eki_whatsapp.routing")

__all__ = ["SendRecords"]


class SendRecords:
    """Records the outcome of ``router``'s sends."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def priced(self, req: Pending, decision: Decision) -> dict[str, Any]:
        """How a send is priced besides its provider, user and category: from the business
        number it went from, with the provider's own 24 hours (not the deciding margin)."""
        return {
            "business": self.router.providers[decision.provider].business_number,
            "in_window": self.router.facts.priced_window(decision.provider, req),
            "at": req.at,
        }

    def price_unknown(self, req: Pending, decision: Decision) -> None:
        """A send whose answer was lost after the request left may have been delivered and
        charged: it goes into the ledger (``note="timed-out"``), so the report does not
        understate the bill."""
        try:
            self.router.costs.record_timeout(
                decision.provider, req.user, decision.category, **self.priced(req, decision)
            )
        except Exception:
            logger.exception("pricing a timed-out send to %s failed", req.user)

    def accepted(self, req: Pending, decision: Decision, receipt: SendReceipt) -> SendReceipt:
        """Record a send the provider accepted: close its breaker, price it, log it, and keep its
        receipt under the send's idempotency key — one write to the store where it can batch."""
        self.router.breakers[decision.provider].success()
        writes: AbstractContextManager[Any]
        try:
            writes = batch(self.router.store)
            writes.__enter__()
        except Exception:  # no batch now (the store is busy): each write commits on its own
            logger.warning("the writes of message %s are not batched", receipt.message_id, exc_info=True)
            writes = nullcontext()
        try:
            self._record_accepted(req, decision, receipt)
            self.router.receipts.put(req.key, receipt)
        except BaseException as exc:
            writes.__exit__(type(exc), exc, exc.__traceback__)
            raise
        try:
            writes.__exit__(None, None, None)
        except Exception:
            logger.exception(
                "%s accepted message %s but its log row, price and receipt could not be written; "
                "the message was sent",
                receipt.provider,
                receipt.message_id,
            )
        return receipt

    def _record_accepted(self, req: Pending, decision: Decision, receipt: SendReceipt) -> None:
        ids = receipt.message_ids or (receipt.message_id,)
        try:
            self.router.costs.record_send(
                receipt.provider, ids, req.user, decision.category, **self.priced(req, decision)
            )
        except Exception:
            logger.exception("pricing message %s failed; the send itself succeeded", receipt.message_id)
        if req.outbox is not None:
            return  # a queued send: the outbox rewrites its row
        try:
            self.router.log.success(receipt, req, decision)
        except Exception:
            # The provider accepted the message: it is on its way, so the caller (ctx.reply) must
            # not see a failure and send it again. The row is missing; say so loudly.
            logger.exception(
                "%s accepted message %s but writing its log row failed; the message was sent",
                receipt.provider,
                receipt.message_id,
            )
