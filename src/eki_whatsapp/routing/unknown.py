"""Sends whose outcome is unknown (:class:`~eki_whatsapp.providers.base.OutcomeUnknown`: the
answer was lost after the request left), resolved by the status webhook that echoes their
correlation key: the outbox row is marked sent, the receipt of its idempotency key becomes the
real one, and the parts of a split text after the one that went out are queued."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..formatting import split
from ..messages import Text
from ..providers.base import SendReceipt
from ..store.base import OutboxItem
from .stored import dump_message, load_inbound, load_message

if TYPE_CHECKING:
    from ..events import StatusUpdate
    from .outbox import Outbox

logger = logging.getLogger("eki_whatsapp.routing")

__all__ = ["UnknownSends"]

#: Statuses whose key matched no unknown send yet (their message has no log row): the send may
#: be kept a moment later (key-value space, ``"<provider>:<key>" -> {message_id, status}``).
_EARLY = "eki.outbox.early"


class UnknownSends:
    """The unknown sends of an :class:`~eki_whatsapp.routing.outbox.Outbox`."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def resolve(self, status: StatusUpdate) -> bool:
        """A status that echoes the key of a send whose outcome was unknown: it went out. Its
        row takes the message id, and the receipt of its idempotency key is the real one.

        A status can also come *before* the send is known to be ambiguous (the provider
        delivered at once, the answer was lost much later): a status with a key whose message
        has no log row is remembered, and the send is resolved with it when it is kept
        (:meth:`resolve_early`), or at the latest before it would be sent again."""
        if status.correlation is None or not self.outbox.enabled:
            return False
        router = self.outbox.router
        if self._resolved(status.provider, status.correlation, status.message_id, status.status):
            return True
        if router.store.get_message(status.provider, status.message_id) is None:
            key = f"{status.provider}:{status.correlation}"
            router.store.set_value(_EARLY, key, {"message_id": status.message_id, "status": status.status})
        return False

    def _resolved(self, provider: str, correlation: str, message_id: str, by: str) -> bool:
        router = self.outbox.router
        item = router.store.resolve_send(provider, correlation, message_id)
        if item is None:
            return False
        logger.info("%s: the status of %s says it went out (%s)", item.id, message_id, by)
        receipt = SendReceipt(
            provider=provider,
            message_id=message_id,
            status="accepted",
            raw={"outbox": item.id, "resolved_by": by},
            attempts=item.attempts,
            to=item.to,
            kind=str(item.message.get("$", "")).lower() or None,
            sent_at=router.clock(),
        )
        # (It was priced when its answer was lost: ``note="timed-out"`` in the ledger.)
        router.receipts.put(item.options.get("idempotency_key"), receipt)
        self._queue_rest(item, provider)
        return True

    def resolve_early(self, provider: str | None, correlation: str | None) -> bool:
        """Resolve an unknown send with a status that came before it was kept, if one did."""
        if provider is None or correlation is None:
            return False
        seen = self.outbox.router.store.get_value(_EARLY, f"{provider}:{correlation}")
        if not isinstance(seen, dict) or not seen.get("message_id"):
            return False
        return self._resolved(provider, correlation, str(seen["message_id"]), str(seen.get("status")))

    def _queue_rest(self, item: OutboxItem, provider: str) -> None:
        """A split text whose part went out (resolved) still owes the parts after it: they
        are queued, due now, so nothing of the message is lost."""
        try:
            message = load_message(item.message)
        except (TypeError, ValueError):
            return
        sender = self.outbox.router.providers.get(provider)
        if not isinstance(message, Text) or sender is None:
            return
        parts = split(message.body, int(getattr(sender, "text_limit", 4096)))
        if len(parts) < 2:
            return
        found = message.body.find(parts[0])
        rest = message.body[found + len(parts[0]) :].strip() if found >= 0 else ""
        if not rest:
            return
        options = dict(item.options)
        req = self.outbox.router.pending(
            item.to,
            Text(rest, preview_url=message.preview_url),
            load_inbound(options.get("inbound")),
            options.get("category"),
            options.get("provider"),
            {**(options.get("extra") or {}), "rest_of": item.id},
        )
        now = self.outbox.router.clock()
        rest_item = OutboxItem(
            to=item.to,
            message=dump_message(req.message),
            options={**options, "idempotency_key": None, "extra": dict(req.extra), "via": provider},
            expires_at=item.expires_at,
            next_attempt_at=now,
        )
        rest_id = self.outbox.router.store.enqueue_send(
            rest_item, self.outbox.router.log.kept(req, provider, "queued", None)
        )
        logger.info("%s: the parts after the one that went out are queued as %s", item.id, rest_id)
