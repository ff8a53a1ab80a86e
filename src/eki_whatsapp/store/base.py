"""The :class:`Store` protocol: message log, statuses, dedup, 24-hour windows, agent memory,
usage, the cost ledger and a small key-value space.

Implementations: :class:`~eki_whatsapp.store.memory.MemoryStore` (tests),
:class:`~eki_whatsapp.store.sqlite.SQLiteStore` (the default), and the Django ORM store in
``eki_whatsapp_django``. All methods are synchronous and thread-safe; they are short local
operations. How rows merge (statuses, windows, dedup) is written once in
:mod:`eki_whatsapp.store.rules`; :mod:`eki_whatsapp.testing.store_contract` checks a store obeys it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, runtime_checkable

from typing_extensions import Required

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ..events import ChangeEvent, Event, InboundMessage, StatusUpdate

Direction = Literal["in", "out"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def batch(store: object) -> AbstractContextManager[Any]:
    """``store.batch()`` when the store has one (SQLite: the writes inside commit together),
    else nothing: every write commits on its own, as always."""
    method = getattr(store, "batch", None)
    return method() if method is not None else nullcontext()


def read_values(store: Any, key: str, namespaces: Sequence[str]) -> dict[str, Any]:
    """The values stored under ``key`` in each of ``namespaces`` that has one: in one query with
    the store's ``get_values`` (the built-in stores have it), else ``get_value`` for each."""
    many = getattr(store, "get_values", None)
    if many is not None:
        return dict(many(key, namespaces))
    found = ((n, store.get_value(n, key)) for n in namespaces)
    return {n: v for n, v in found if v is not None}


def as_utc(value: datetime) -> datetime:
    """An aware UTC time; a naive one is taken to be UTC already."""
    if value.tzinfo is timezone.utc:
        return value  # the usual case, on hot paths: no new object
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One row of the message log: a message in or out (or another webhook event).

    ``sender``/``recipient`` are as on the wire: for ``in`` the user sends to the business, for
    ``out`` the business sends to the user. ``user`` is always the user.
    """

    direction: Direction
    provider: str
    type: str
    message_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    text: str | None = None
    status: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    raw: Any = dc_field(default=None, repr=False, compare=False)
    timestamp: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    attempts: int = 0
    #: Why this provider was used (``reply-channel``, ``window-open``, ``failover:ProviderDown``...).
    reason: str | None = None
    category: str | None = None
    extra: Mapping[str, Any] = dc_field(default_factory=dict, compare=False)
    id: int | None = None
    #: Whether the bot handled this event (``pending``, ``failed`` (retry due), ``handled``,
    #: ``dead``); ``None`` for rows that carry no work (outbound messages, unhandled kinds).
    handling: str | None = None

    @property
    def user(self) -> str | None:
        return self.sender if self.direction == "in" else self.recipient


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One status event as received (the log row keeps only the highest status)."""

    provider: str
    message_id: str
    status: str
    timestamp: datetime
    error_code: int | None = None
    error_message: str | None = None
    raw: Any = dc_field(default=None, repr=False, compare=False)
    #: The pricing category the provider reported with this status, if any.
    category: str | None = None


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Model usage of one call (agent)."""

    user: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal | None = None
    at: datetime = dc_field(default_factory=utcnow)
    turn_id: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One priced (or unpriceable) message in the cost ledger.

    ``amount`` is ``None`` when the cost is unknown (never a silent zero).
    """

    provider: str
    message_id: str
    category: str | None
    at: datetime
    user: str | None = None
    market: str | None = None
    pricing_model: str | None = None
    billable: bool | None = None
    amount: Decimal | None = None
    currency: str = "USD"
    #: ``send`` (estimated when sent) or ``status`` (from the provider's pricing data).
    source: str = "send"
    note: str | None = None

    @property
    def month(self) -> str:
        """The UTC month of ``at`` (``"2026-11"``): the same whichever store keeps the entry."""
        return as_utc(self.at).strftime("%Y-%m")


HandlingState = Literal["pending", "failed", "handled", "dead"]
WorkKind = Literal["message", "status", "change"]


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a piece of work, and until when (after that, any worker may take it over)."""

    owner: str
    until: datetime


@dataclass(frozen=True, slots=True)
class WorkItem:
    """An event the bot must handle, as the store keeps it (docs/store.md, "Durable handling").

    ``id`` is the store's name for it (``m<n>`` for a log row, ``s<n>`` for a status row): the
    id ``eki-whatsapp retry`` takes. ``entry`` (messages, changes) or ``status`` (statuses) is
    the stored row the event is read back from.
    """

    id: str
    kind: WorkKind
    state: HandlingState
    attempts: int
    created_at: datetime
    lease_owner: str | None = None
    lease_until: datetime | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    entry: LogEntry | None = dc_field(default=None, repr=False, compare=False)
    status: StatusRecord | None = dc_field(default=None, repr=False, compare=False)


OutboxState = Literal["queued", "unknown", "sent", "expired", "failed"]


class LogQuery(TypedDict, total=False):
    """The filters of :meth:`Store.list_log` (all optional).

    Attributes:
        provider: rows of this provider only.
        direction: ``"in"`` or ``"out"``.
        user: rows of this user (the sender of an inbound row, the recipient of an outbound one).
        limit: at most this many rows (default 100).
    """

    provider: str | None
    direction: Direction | None
    user: str | None
    limit: int


class WorkOutcome(TypedDict, total=False):
    """How an attempt at a piece of work ended: the keywords of :meth:`Store.finish_work`.

    Attributes:
        error: ``None`` (default): handled; else what went wrong.
        retry_at: with an ``error``, when to try again (``None``: the work is ``dead``).
    """

    error: str | None
    retry_at: datetime | None


class SendOutcome(TypedDict, total=False):
    """How an outbox attempt ended: the keywords of :meth:`Store.finish_send`.

    Attributes:
        state: ``sent``, ``expired`` or ``failed`` (final), or ``queued`` / ``unknown`` again.
        entry: the send's log row as it is now (rewritten in place).
        retry_at: when a ``queued`` / ``unknown`` send is due again.
        error: becomes ``last_error``.
        correlation: the new correlation key of an ``unknown`` send.
        provider: the provider an ``unknown`` send went to.
    """

    state: Required[OutboxState]
    entry: LogEntry | None
    retry_at: datetime | None
    error: str | None
    correlation: str | None
    provider: str | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A send in the outbox (docs/store.md, "Outbox"): one that could not go now (``queued``), or
    whose request may have reached the provider (``unknown``, waiting for a status that echoes
    ``correlation``). ``sent``, ``expired`` and ``failed`` are final.

    ``message`` and ``options`` are JSON (what :mod:`eki_whatsapp.routing.outbox` needs to route
    the send again: the message, its category, provider, inbound message, idempotency key...).
    ``id`` is the store's name for it (``o<n>``), the id ``eki-whatsapp retry`` takes; ``log_id``
    its row in the message log, rewritten to what finally happened.
    """

    to: str
    message: Mapping[str, Any] = dc_field(compare=False)
    expires_at: datetime
    state: OutboxState = "queued"
    options: Mapping[str, Any] = dc_field(default_factory=dict, compare=False)
    #: The key a status webhook echoes for an ``unknown`` send (``StatusUpdate.correlation``).
    correlation: str | None = None
    #: The provider an ``unknown`` send went to (whose statuses can resolve it).
    provider: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    id: str | None = None
    log_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@runtime_checkable
class Store(Protocol):
    """Persistence for everything the bot must remember."""

    # --- message log and dedup ----------------------------------------------------------
    def record_inbound(self, message: InboundMessage) -> bool:
        """Log an inbound message and refresh the user's 24-hour window.

        Returns ``False`` (and changes nothing) when the same provider + message id was already
        recorded: this is the dedup, an atomic insert-if-absent.
        """
        ...

    def record_status(self, status: StatusUpdate) -> bool:
        """Log a status and merge it into the message's log row (:func:`.rules.merge_status`:
        never downgrade; the first pricing category fills an empty one).

        Returns ``False`` when the same (provider, message id, status) was already recorded.
        """
        ...

    def record_change(self, event: ChangeEvent) -> None:
        """Log another webhook notification (template status, account update, ...)."""
        ...

    def log_outbound(self, entry: LogEntry) -> int:
        """Log a message the bot sent (or failed to send); returns the row id.

        Statuses that arrived before this row (providers can be that fast) are merged into it in
        arrival order (:func:`.rules.merge_statuses`). A message id already in the log is refused
        with :class:`~eki_whatsapp.StoreError`.
        """
        ...

    def get_message(self, provider: str, message_id: str) -> LogEntry | None:
        """The log row of a message (inbound or outbound) by provider id."""
        ...

    def list_log(self, **query: Unpack[LogQuery]) -> list[LogEntry]:
        """Log rows, newest first, filtered by :class:`LogQuery` (``limit`` 100 by default)."""
        ...

    def statuses(self, provider: str, message_id: str) -> list[StatusRecord]:
        """Every status received for a message, oldest first."""
        ...

    # --- durable handling (rules: :mod:`.rules`, "Durable handling") ----------------------
    def record_work(self, event: Event, lease: Lease | None = None) -> str | None:
        """Record an event exactly as ``record_inbound``/``record_status``/``record_change``
        would, and, in the same write, that it must be handled (``pending``); with a ``lease``,
        already claimed by ``lease.owner`` (its first attempt).

        Returns the work id, or ``None`` when the event is a duplicate (nothing changed).
        """
        ...

    def claim_work(self, work_id: str, lease: Lease, *, now: datetime) -> WorkItem | None:
        """Claim one piece of work (compare-and-set): it must be ``pending`` or ``failed``, its
        retry due, and its lease absent, expired or already ``lease.owner``'s. Counts an
        attempt. ``None`` when someone else holds it, or it is handled, dead or unknown."""
        ...

    def claim_due(
        self, lease: Lease, *, now: datetime, max_attempts: int, limit: int = 100
    ) -> list[WorkItem]:
        """The sweeper's claim: every piece of work that is due (never leased, lease expired,
        retry time reached), oldest first, claimed for ``lease.owner``. Work whose expired lease
        was already its ``max_attempts``-th attempt is marked ``dead`` instead (its worker died
        every time)."""
        ...

    def finish_work(self, work_id: str, owner: str, **outcome: Unpack[WorkOutcome]) -> bool:
        """End an attempt of ``owner``'s (:class:`WorkOutcome`): ``handled`` when ``error`` is
        ``None``; else ``failed`` (retried at ``retry_at``) or, without ``retry_at``, ``dead``.
        ``False`` (nothing changed) when ``owner`` no longer holds the lease (it expired and
        another worker took it)."""
        ...

    def get_work(self, work_id: str) -> WorkItem | None: ...

    def pending_work(self, *, limit: int = 100) -> list[WorkItem]:
        """Work not handled yet (``pending``, ``failed``, ``dead``), oldest first."""
        ...

    def retry_work(self, work_id: str | None = None) -> int:
        """Make ``dead`` or ``failed`` work (one, or all with ``None``) ``pending`` again, due
        now, with its attempts reset. Returns how many were changed."""
        ...

    # --- outbox (rules: :mod:`.rules`, "Outbox") -------------------------------------------
    # Claims are compare-and-sets on one row, as for handling: of N processes sharing the store,
    # one gets each send. A SQL store can claim with one ``UPDATE ... WHERE <open, due, lease
    # absent or expired> RETURNING`` (PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then
    # ``UPDATE``); every other write is one ``UPDATE`` guarded by the lease owner.
    def enqueue_send(self, item: OutboxItem, entry: LogEntry) -> str:
        """Put a send in the outbox: its log row (``entry``, status ``queued`` or ``unknown``)
        and ``item`` (with ``log_id`` set to that row) in one write. ``item.lease_owner`` /
        ``lease_until`` may hold it already. Returns its id (``o<n>``)."""
        ...

    def claim_sends(self, lease: Lease, *, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Claim the sends that are due, oldest first, for ``lease.owner``: state ``queued`` or
        ``unknown``, ``next_attempt_at`` absent or reached, lease absent or expired
        (:func:`.rules.send_claimable`). Each claim counts an attempt. Sends past ``expires_at``
        are claimed too: the claimer ends them (``expired``)."""
        ...

    def finish_send(self, outbox_id: str, owner: str, **outcome: Unpack[SendOutcome]) -> bool:
        """End ``owner``'s attempt: ``sent``, ``expired`` or ``failed`` (final), or ``queued`` /
        ``unknown`` again, due at ``retry_at`` (with the new ``correlation`` and ``provider`` of
        an ``unknown`` send). ``error`` becomes ``last_error``. With ``entry``, the send's log
        row is rewritten to it (:func:`.rules.rewritten_row`: same id and creation time; the
        statuses already received for its message id merged in). ``False`` (nothing changed)
        when ``owner`` does not hold the send or it is final."""
        ...

    def resolve_send(self, provider: str, correlation: str, message_id: str) -> OutboxItem | None:
        """A status of ``provider`` echoed ``correlation`` for ``message_id``: the ``unknown``
        send with that key becomes ``sent`` (whoever holds its lease), and its log row gets the
        message id, status ``accepted`` and the statuses already received for it merged in.
        Returns the send as it was before (``None``: no ``unknown`` send has that key)."""
        ...

    def get_send(self, outbox_id: str) -> OutboxItem | None: ...

    def pending_sends(self, *, limit: int = 100) -> list[OutboxItem]:
        """Sends not final yet (``queued``, ``unknown``), oldest first."""
        ...

    def retry_send(self, outbox_id: str | None = None, *, expires_at: datetime) -> int:
        """Make a send (one, or all with ``None``) due now: ``queued`` or ``unknown`` ones keep
        their state; ``failed`` and ``expired`` ones are ``queued`` again until ``expires_at``.
        Attempts are reset, leases dropped. Returns how many were changed."""
        ...

    # --- 24-hour window -------------------------------------------------------------------
    def last_inbound_at(self, provider: str, business: str | None, user: str) -> datetime | None:
        """Provider timestamp of the user's latest message to that business number.

        ``business=None`` means any business number of that provider.
        """
        ...

    # --- agent memory and usage -------------------------------------------------------------
    def load_memory(self, key: str) -> list[dict[str, Any]]: ...

    def save_memory(self, key: str, items: list[dict[str, Any]]) -> None: ...

    def record_usage(self, record: UsageRecord) -> None: ...

    def usage(self, *, user: str | None = None, since: datetime | None = None) -> list[UsageRecord]: ...

    # --- cost ledger ------------------------------------------------------------------------
    def add_ledger(self, entry: LedgerEntry) -> bool:
        """Add a ledger entry; ``False`` if (provider, message id, source) is already there."""
        ...

    def ledger(self, *, month: str | None = None) -> list[LedgerEntry]:
        """Entries of a month (``"2026-11"``), or all."""
        ...

    # --- small key-value space (JSON values) -----------------------------------------------
    def get_value(self, namespace: str, key: str) -> Any: ...

    def set_value(self, namespace: str, key: str, value: Any) -> None: ...

    # --- counters and compare-and-set, atomic across processes (rules.counter_after) -----------
    def increment(self, namespace: str, key: str, amount: int = 1, *, limit: int | None = None) -> int | None:
        """Add ``amount`` to the integer at ``(namespace, key)`` (absent: 0) in one atomic step and
        return the new value; with ``limit``, a step that would pass it changes nothing and
        returns ``None``. ``get_value`` reads the counter. N processes sharing a store count as one.
        """
        ...

    def compare_and_set(self, namespace: str, key: str, expected: Any, value: Any) -> bool:
        """Store ``value`` at ``(namespace, key)`` only if the stored value equals ``expected``
        (``None``: absent), atomically; ``True`` when it was stored."""
        ...

    def close(self) -> None: ...


# --- helpers that moved to rules.py (kept importable from here) ------------------------------
_MOVED = {
    "status_rank": "status_rank",
    "should_replace_status": "advances",
    "inbound_entry": "inbound_entry",
    "change_entry": "change_entry",
    "first_error": "first_error",
    "dumps": "dumps",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from . import rules

        return getattr(rules, _MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
