"""The webhook pipeline: a short loop over the bot's webhook readers — then answer.

Each request goes through small steps, each one testable on its own:

1. **admit** — the body size limit and the HTTP method (nothing provider specific);
2. **detect** — the first reader whose ``detect`` claims the request (:func:`detect`);
3. **verify** — handshakes and signatures: the reader answers at once or lets it through;
4. **parse** — the reader turns the body into events (a malformed body is a 400);
5. **record** — every event is logged before the answer; duplicates are dropped (:func:`record`).

What a reader is: :class:`~eki_whatsapp.providers.base.WebhookReader`. Nothing here runs
handlers: the :class:`~eki_whatsapp.bot.Bot` does that after (or, inline, before) answering.
Anything no reader claims gets a clear 4xx — never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .events import Event, InboundMessage, StatusUpdate
from .providers.base import PayloadError, WebhookReader, refuse
from .webhook import WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from .bot import Bot
    from .store import Store
    from .store.base import Lease

logger = logging.getLogger("eki_whatsapp.webhook")


@dataclass(slots=True)
class Ingested:
    """The answer to give and the new (not duplicate) events to hand to handlers; ``work`` says,
    for each event, the id of its work in the store (``None``: nothing to handle)."""

    response: WebhookResponse
    events: list[Event]
    provider: str | None = None
    work: list[str | None] = field(default_factory=list)
    #: The lease the work was recorded with (``None``: recorded unclaimed, for the runner).
    lease: Lease | None = None


def reject(status: int, reason: str, *, provider: str | None = None, **headers: str) -> Ingested:
    """A refusal with nothing to handle."""
    return Ingested(refuse(status, reason, **headers), [], provider)


def ingest(bot: Bot, request: WebhookRequest) -> Ingested:
    """Run every step for one request."""
    refused = admit(request, bot.settings.whatsapp_max_body_bytes)
    if refused is not None:
        return refused
    reader = detect(bot.webhook_readers, request)
    if reader is None:
        return unrecognised(bot.webhook_readers, request)
    answer = reader.verify(request)
    if answer is not None:
        return Ingested(answer, [], reader.name)
    try:
        events = reader.parse(request)
    except PayloadError as exc:
        return reject(400, str(exc), provider=reader.name)
    lease = bot.new_lease() if bot.runner.leases_here else None
    fresh, work = record(bot.store, events, bot.needs_handling, lease)
    return Ingested(reader.ack, fresh, reader.name, work, lease)


def admit(request: WebhookRequest, max_body_bytes: int) -> Ingested | None:
    """Refuse what no provider sends: oversize bodies, methods other than GET/HEAD/POST."""
    if len(request.body) > max_body_bytes:
        return reject(413, f"body larger than {max_body_bytes} bytes")
    if request.method not in ("GET", "HEAD", "POST"):
        return reject(405, f"method {request.method} not allowed", Allow="GET, POST")
    return None


def detect(readers: Sequence[WebhookReader], request: WebhookRequest) -> WebhookReader | None:
    """The first reader that claims the request."""
    for reader in readers:
        if reader.detect(request):
            return reader
    return None


def unrecognised(readers: Sequence[WebhookReader], request: WebhookRequest) -> Ingested:
    names = ", ".join(reader.name for reader in readers) or "none"
    if request.method != "POST":
        return reject(
            400, f"GET that no provider ({names}) recognises: Meta's verification has hub.* parameters"
        )
    ctype = request.content_type or "(none)"
    return reject(415, f"unsupported content type {ctype}: no registered provider ({names}) reads it")


def record(
    store: Store,
    events: list[Event],
    needs_handling: Callable[[Event], bool] | None = None,
    lease: Lease | None = None,
) -> tuple[list[Event], list[str | None]]:
    """Log every event before answering, and, in the same write, that it must be handled
    (``needs_handling``; leased with ``lease``). Returns the events not seen before and the id
    of each one's work (``None`` when it has none)."""
    fresh: list[Event] = []
    work: list[str | None] = []
    for event in events:
        if needs_handling is not None and needs_handling(event):
            work_id = store.record_work(event, lease)
            if work_id is not None:
                fresh.append(event)
                work.append(work_id)
            elif isinstance(event, InboundMessage):
                logger.info("duplicate %s message %s ignored", event.provider, event.id)
            continue
        if type(event) is StatusUpdate:  # the most frequent event first
            new = store.record_status(event)
        elif isinstance(event, InboundMessage):
            new = store.record_inbound(event)
            if not new:
                logger.info("duplicate %s message %s ignored", event.provider, event.id)
        elif isinstance(event, StatusUpdate):
            new = store.record_status(event)
        else:
            store.record_change(event)
            new = True
        if new:
            fresh.append(event)
            work.append(None)
    return fresh, work
