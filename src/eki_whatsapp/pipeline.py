"""The webhook pipeline: a short loop over the bot's webhook readers — then answer.

Each request goes through small steps, each one testable on its own:

1. **admit** — the body size limit and the HTTP method (nothing provider specific);
2. **detect** — the first reader whose ``detect`` claims the request (:func:`detect`);
3. **verify** — handshakes and signatures: the reader answers at once or lets it through;
4. **parse** — the reader turns the body into events (a malformed body is a 400);
5. **record** — every event is logged before the answer; duplicates are dropped (:func:`record`);
6. **price** — the fee of a provider that charges for inbound messages (:func:`price_inbound`).

:func:`receive` runs them and always answers (a store failure is a 503 the provider retries).

What a reader is: :class:`~eki_whatsapp.providers.base.WebhookReader`. Nothing here runs
handlers: the :class:`~eki_whatsapp.bot.Bot` does that after (or, inline, before) answering.
Anything no reader claims gets a clear 4xx — never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import StoreError
from .events import Event, InboundMessage, StatusUpdate
from .providers.base import PayloadError, WebhookReader, refuse
from .runners import Work
from .webhook import WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from .bot import Bot
    from .store import Store
    from .store.base import Lease

logger = logging.getLogger("eki_whatsapp.webhook")


@dataclass(slots=True)
class Ingested:
    """The answer to give and the new (not duplicate) events; ``works``: the work recorded for
    those that have some (each with the lease it was written with; ``None``: to be claimed)."""

    response: WebhookResponse
    events: list[Event]
    provider: str | None = None
    works: list[Work] = field(default_factory=list)


def reject(status: int, reason: str, *, provider: str | None = None, **headers: str) -> Ingested:
    """A refusal with nothing to handle."""
    return Ingested(refuse(status, reason, **headers), [], provider)


def receive(bot: Bot, request: WebhookRequest) -> Ingested:
    """:func:`ingest`, answered whatever happens (a store failure is a 503 the provider retries;
    a bug a 500, never raised into the web framework), then the inbound fees priced."""
    try:
        result = ingest(bot, request)
    except StoreError:
        logger.exception("store failure while logging a webhook; answering 503 so it is retried")
        return Ingested(WebhookResponse.text(503, "store unavailable, retry later"), [])
    except Exception:
        logger.exception("webhook request failed")
        return Ingested(WebhookResponse.text(500, "internal error"), [])
    price_inbound(bot, result.events)
    return result


def price_inbound(bot: Bot, events: Sequence[Event]) -> None:
    """Record the fee of each new inbound message of a provider that charges one (Twilio's
    USD 0.005 a message, docs/costs.md); pricing never fails a webhook."""
    for event in events:
        if isinstance(event, InboundMessage):
            try:
                bot.costs.record_inbound(event)
            except Exception:
                logger.exception("pricing inbound message %s failed", event.id)


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
    except Exception:  # a reader's bug must not become a 500 that the provider retries forever
        logger.exception("%s could not parse a verified request", reader.name)
        return reject(400, f"unreadable {reader.name} webhook body", provider=reader.name)
    lease = bot.new_lease() if bot.runner.leases_here else None
    fresh, works = record(bot.store, events, bot.needs_handling, lease)
    return Ingested(reader.ack, fresh, reader.name, works)


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
) -> tuple[list[Event], list[Work]]:
    """Log every event before answering, and, in the same write, that it must be handled
    (``needs_handling``; leased with ``lease``). Returns the events not seen before and the work
    recorded for those that have some."""
    fresh: list[Event] = []
    works: list[Work] = []
    for event in events:
        try:
            new, work_id = _record_one(store, event, needs_handling, lease)
        except _UNSTORABLE as exc:  # only then look for what the store cannot hold (rules.storable)
            stored = _record_cleaned(store, event, exc, needs_handling, lease)
            if stored is None:
                continue
            event, (new, work_id) = stored
        if new:
            fresh.append(event)
            if work_id is not None:
                works.append(Work(work_id, event, lease))
    return fresh, works


#: What a store raises for a value it cannot hold: UnstorableValue (a ValueError), or, from a
#: store of your own, the driver's UnicodeEncodeError / OverflowError; RecursionError: raw data
#: nested too deeply to serialise.
_UNSTORABLE = (ValueError, OverflowError, RecursionError)


def _record_one(
    store: Store, event: Event, needs_handling: Callable[[Event], bool] | None, lease: Lease | None
) -> tuple[bool, str | None]:
    """Write one event: whether it is new, and the id of its work (``None``: none)."""
    if needs_handling is not None and needs_handling(event):
        work_id = store.record_work(event, lease)
        if work_id is None and isinstance(event, InboundMessage):
            logger.info("duplicate %s message %s ignored", event.provider, event.id)
        return work_id is not None, work_id
    if type(event) is StatusUpdate:  # the most frequent event first
        return store.record_status(event), None
    if isinstance(event, InboundMessage):
        new = store.record_inbound(event)
        if not new:
            logger.info("duplicate %s message %s ignored", event.provider, event.id)
        return new, None
    if isinstance(event, StatusUpdate):
        return store.record_status(event), None
    store.record_change(event)
    return True, None


def _record_cleaned(
    store: Store,
    event: Event,
    error: BaseException,
    needs_handling: Callable[[Event], bool] | None,
    lease: Lease | None,
) -> tuple[Event, tuple[bool, str | None]] | None:
    """Write ``event`` again with what the store refused replaced (:func:`rules.storable`); the
    cleaned event (what handlers get) and the outcome, or ``None`` when even that failed: the
    event is dropped with an error in the log, and the rest of the batch goes on."""
    from .store import rules

    cleaned, replaced = rules.storable(event)
    what = f"{event.provider} {event.kind} {_event_ref(event)}"
    if not replaced:
        logger.error("%s could not be stored (%s: %s); dropped", what, type(error).__name__, error)
        return None
    logger.warning(
        "%s has values the store cannot hold (%s: %s); stored with %s",
        what,
        type(error).__name__,
        str(error)[:200],
        ", ".join(replaced),
    )
    try:
        return cleaned, _record_one(store, cleaned, needs_handling, lease)
    except _UNSTORABLE:
        logger.exception("%s could not be stored even cleaned; dropped", what)
        return None


def _event_ref(event: Event) -> str:
    from .store.rules import storable_text

    ref = event.id if isinstance(event, InboundMessage) else getattr(event, "message_id", None)
    return repr(storable_text(str(ref or getattr(event, "field", "?")))[:80])
