"""The store rulebook: how the rows of every store change, written once.

Every store (memory, SQLite, the Django ORM store, and any other) applies these pure functions,
so they agree by construction; the contract suite in :mod:`eki_whatsapp.testing.store_contract`
checks that they do. A SQL store may express a rule inside a statement when it must be atomic
there (a window moving forward is an ``UPDATE ... WHERE last_inbound_at < ?``); the rule it
implements is still the one named here.

The rules:

* **Rows a message makes** (:func:`inbound_entry`, :func:`change_entry`): an inbound message is
  logged as ``received`` with the sender's profile name (and the business number, when the
  recipient is an id) in ``extra``; another notification as ``event:<field>``.
* **Dedup**: a message is its ``(provider, message id)``, a status its ``(provider, message id,
  status)``, a ledger entry its ``(provider, message id, source)`` (:func:`ledger_key`). The
  second write of any of them changes nothing and says so (``False``).
* **Statuses never go back** (:func:`advances`): ``sent → delivered → read``; a final failure
  (``failed``, ``undelivered``, ``canceled``) outranks them all and is never replaced.
* **A status merges into its row** (:func:`status_changes`): the status moves forward only; a
  status that moves it and carries an error brings that error (code and text together); the
  first pricing category seen fills a row that has none, whatever the status's rank (pricing
  describes the message, not the step). The row's own category, when it was logged with one,
  is kept.
* **Order does not matter**: a status that arrives before its row is kept and merged when the
  row is written (:func:`status_changes` over the statuses in arrival order), so the row ends
  the same as when the status came after it.
* **Windows move forward only** (:func:`window_key`, :func:`window_moves`): the window of
  ``(provider, business number, user)`` is the provider timestamp of the user's latest message;
  a late delivery of an older message, or a duplicate, does not move it.
* **Counters and compare-and-set** (:func:`counter_after`, :func:`same_value`): a counter is an
  integer key-value entry (absent is 0) moved by ``increment`` in one atomic step; with a limit,
  a step that would pass it changes nothing (so N processes sharing an allowance of 1000 count
  exactly 1000). ``compare_and_set`` writes only when the stored value equals, as JSON, the one
  expected (``None``: absent) — how shared breaker state changes without lost updates.
* **Durable handling** (:func:`work_kind`, :func:`claimable`, :func:`retry_at`, :func:`dies`):
  an event with work is written ``pending`` in the same write as its log row (the row carries
  the handling state: no second statement); a message's work lives on its ``message_log`` row
  (id ``m<n>``), a status's on its ``status_log`` row (``s<n>``). A claim is a compare-and-set:
  ``pending``/``failed`` work whose retry is due and whose lease is absent, expired or the
  claimer's own; each claim counts an attempt. A failed attempt is retried after an exponential
  backoff until ``max_attempts``, then ``dead`` with its error; an expired lease on the last
  attempt (the worker died every time) is ``dead`` too. ``handled`` and ``dead`` are final
  until someone retries (``eki-whatsapp retry``), which resets the attempts.
* **Outbox** (:func:`send_claimable`, :func:`rewritten_row`, :func:`outbox_id`): a send that
  could not go (``queued``) or whose outcome is unknown (``unknown``) is written with its log
  row in one write; its id is ``o<n>``. A claim is a compare-and-set like a handling claim
  (open state, due, lease absent or expired — :func:`send_claimable`) and counts an attempt.
  ``sent``, ``expired`` and ``failed`` are final; only the lease holder ends an attempt. A
  status that echoes an ``unknown`` send's correlation key makes it ``sent`` whoever holds it.
  The send's log row is rewritten to what finally happened (:func:`rewritten_row`), keeping
  its id and creation time, with the statuses already received for its message id merged in.
  ``retry`` makes a send due now; a final one other than ``sent`` is ``queued`` again.
* **Stored values are JSON** (:func:`json_copy`): raw payloads, ``extra``, memory items and
  key-value values come back as JSON would give them (tuples as lists, datetimes as text),
  whichever store holds them; times come back aware, in UTC (:func:`as_utc`).
* **What a store cannot hold is cleaned, once, here** (:func:`storable`): when a store refuses
  an event's values (:class:`~eki_whatsapp.errors.UnstorableValue`: a lone surrogate or NUL in
  text, a number out of a column's range, ``Infinity`` in JSON), the event is written again
  with those values replaced — text gets U+FFFD, a typed number out of the signed 64-bit range
  becomes ``None`` (the raw data keeps it), a non-finite number in raw data becomes text.
  Only then: the common case pays nothing for the rule.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

from ..events import STATUS_RANK, ChangeEvent, Event, InboundMessage, StatusUpdate
from .base import (
    HandlingState,
    LedgerEntry,
    LogEntry,
    LogQuery,
    StatusRecord,
    WorkItem,
    WorkKind,
    WorkOutcome,
    as_utc,
)

__all__ = [
    "OPEN_STATES",
    "StatusFacts",
    "advances",
    "as_utc",
    "change_entry",
    "claimable",
    "counter_after",
    "died_error",
    "dies",
    "dumps",
    "entry_work_kind",
    "finished_state",
    "first_error",
    "inbound_entry",
    "json_copy",
    "ledger_key",
    "log_limit",
    "outbox_id",
    "parse_outbox_id",
    "parse_work_id",
    "retry_at",
    "rewritten_row",
    "same_value",
    "send_claimable",
    "status_changes",
    "status_facts",
    "status_rank",
    "status_record",
    "storable",
    "storable_text",
    "window_key",
    "window_moves",
    "work_id",
    "work_item",
    "work_kind",
]


# --- rows a message makes ----------------------------------------------------------------------
def inbound_entry(message: InboundMessage, *, id: int | None = None, now: datetime | None = None) -> LogEntry:
    """The log row of an inbound message (status ``received``)."""
    return LogEntry(
        id=id,
        created_at=now,
        updated_at=now,
        direction="in",
        provider=message.provider,
        type=message.type,
        message_id=message.id,
        sender=message.sender,
        recipient=message.recipient,
        text=message.text,
        status="received",
        raw=message.raw,
        timestamp=message.timestamp,
        extra=_inbound_extra(message),
    )


def _inbound_extra(message: InboundMessage) -> dict[str, Any]:
    """The profile name, and the business number when the recipient is an id (Meta's
    phone-number id), so a console can show the number people know."""
    extra: dict[str, Any] = {}
    if message.profile_name:
        extra["profile_name"] = message.profile_name
    if message.business_number and message.business_number != message.recipient:
        extra["business_number"] = message.business_number
    return extra


def change_entry(event: ChangeEvent) -> LogEntry:
    """The log row of another webhook notification (template status, account update, ...)."""
    return LogEntry(
        direction="in",
        provider=event.provider,
        type=f"event:{event.field}",
        recipient=event.account_id,
        raw=dict(event.raw),
        timestamp=event.timestamp,
    )


def ledger_key(entry: LedgerEntry) -> tuple[str, str, str]:
    """What makes a ledger entry unique: a message is priced once per source."""
    return entry.provider, entry.message_id, entry.source


# --- statuses ----------------------------------------------------------------------------------
def status_rank(status: str | None) -> int:
    """How far a status is along ``accepted → sent → delivered → read`` (failures last)."""
    if status is None:
        return -1
    return STATUS_RANK.get(status, 0)


def advances(current: str | None, new: str) -> bool:
    """Whether ``new`` replaces ``current`` (``read`` is never replaced by a late ``delivered``)."""
    return status_rank(new) > status_rank(current)


def first_error(status: StatusUpdate) -> tuple[int | None, str | None]:
    """The error code and text a status carries (its first error), or ``(None, None)``."""
    if not status.errors:
        return None, None
    err = status.errors[0]
    return err.code, err.details or err.message


class StatusFacts(NamedTuple):
    """What a status says about its message's row (a :class:`StatusRecord` says the same)."""

    status: str
    error_code: int | None
    error_message: str | None
    category: str | None


def status_facts(status: StatusUpdate) -> StatusFacts:
    """What a status event says about its row: status, first error, pricing category."""
    code, text = first_error(status)
    category = status.pricing.category if status.pricing is not None else None
    return StatusFacts(status.status, code, text, category)


def status_record(status: StatusUpdate) -> StatusRecord:
    """What a store keeps of a status event."""
    s, f = status, status_facts(status)
    head = (s.provider, s.message_id, s.status, s.timestamp)
    return StatusRecord(*head, f.error_code, f.error_message, dict(s.raw), f.category)


class _StatusFields(Protocol):
    """A :class:`StatusFacts` or a :class:`StatusRecord`: the fields a merge reads."""

    @property
    def status(self) -> str: ...
    @property
    def error_code(self) -> int | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...


def status_changes(
    status: str | None, category: str | None, statuses: Iterable[_StatusFields]
) -> dict[str, Any]:
    """What ``statuses`` (in arrival order) change in a row now at ``status`` and ``category``:
    the fields to set (empty when none), ready for an ``UPDATE`` or :func:`dataclasses.replace`.

    A status moves the row forward only, bringing its error when it carries one (code and text
    together); the first pricing category fills a row that has none, whatever the status's rank.
    Merging again statuses already merged changes nothing.
    """
    changes: dict[str, Any] = {}
    for new in statuses:
        if status_rank(new.status) > status_rank(status):
            status = changes["status"] = new.status
            if new.error_code is not None or new.error_message is not None:
                changes["error_code"] = new.error_code
                changes["error_message"] = new.error_message
        if category is None and new.category is not None:
            category = changes["category"] = new.category
    return changes


# --- 24-hour windows ---------------------------------------------------------------------------
def window_key(message: InboundMessage) -> tuple[str, str, str]:
    """Whose window an inbound message opens: ``(provider, business number, user)``."""
    return message.provider, message.recipient, message.sender


def window_moves(previous: datetime | None, at: datetime) -> bool:
    """Whether a message at ``at`` moves a window last refreshed at ``previous`` (forward only)."""
    return previous is None or at > previous


# --- counters and compare-and-set --------------------------------------------------------------
def counter_after(current: Any, amount: int, limit: int | None = None) -> int | None:
    """The counter after adding ``amount`` to ``current`` (absent: 0), or ``None`` when the result
    would pass ``limit`` — then the counter does not change."""
    if current is not None and (isinstance(current, bool) or not isinstance(current, int)):
        raise TypeError(f"the stored value {current!r} is not a counter (an integer)")
    after = (current or 0) + int(amount)
    if limit is not None and after > limit:
        return None
    return after


def same_value(current: Any, expected: Any) -> bool:
    """Whether a stored value is the one a compare-and-set expects (compared as JSON)."""
    return bool(json_copy(current) == json_copy(expected))


#: What a change given to a store's read-and-replace returns to leave the value as it is.
KEEP: Any = object()


def increment_change(amount: int, limit: int | None) -> Callable[[Any], Any]:
    """``increment`` as a change of the stored value (:data:`KEEP` when it would pass ``limit``),
    for a store that reads and replaces a value in one step."""

    def change(current: Any) -> Any:
        after = counter_after(current, amount, limit)
        return KEEP if after is None else after

    return change


def swap_change(expected: Any, value: Any) -> Callable[[Any], Any]:
    """``compare_and_set`` as a change of the stored value (:data:`KEEP` unless it is ``expected``)."""
    return lambda current: value if same_value(current, expected) else KEEP


# --- durable handling -------------------------------------------------------------------------
#: Work that still has to run (a ``failed`` one when its retry is due).
OPEN_STATES = ("pending", "failed")
#: The longest wait between two attempts, whatever the backoff says.
MAX_BACKOFF = timedelta(hours=1)


def work_kind(event: Event) -> WorkKind:
    """What kind of work an event is (which table carries it: statuses have their own)."""
    if isinstance(event, InboundMessage):
        return "message"
    if isinstance(event, StatusUpdate):
        return "status"
    return "change"


def work_id(kind: WorkKind, row: int) -> str:
    """The id of the work on a row: ``m<n>`` (a ``message_log`` row), ``s<n>`` (a status row)."""
    return f"{'s' if kind == 'status' else 'm'}{row}"


def work_item(
    work_id: str,
    entry: LogEntry | None,
    status: StatusRecord | None,
    created_at: datetime,
    handling: Sequence[Any],
) -> WorkItem:
    """The work on a log row (``entry``) or a status (``status``), from its handling columns
    ``(state, attempts, lease_owner, lease_until, next_attempt_at, last_error)`` as datetimes."""
    kind: WorkKind = "status" if status is not None else entry_work_kind(entry)
    state, attempts, owner, until, next_at, error = handling
    return WorkItem(work_id, kind, state, attempts, created_at, owner, until, next_at, error, entry, status)


def parse_work_id(value: str) -> tuple[str, int] | None:
    """``("m", 12)`` for ``"m12"``; ``None`` when ``value`` is not a work id."""
    if len(value) < 2 or value[0] not in "ms" or not value[1:].isdigit():
        return None
    return value[0], int(value[1:])


def entry_work_kind(entry: LogEntry | None) -> WorkKind:
    """The kind of work a ``message_log`` row carries (a change is logged as ``event:<field>``)."""
    return "change" if entry is None or entry.type.startswith("event:") else "message"


def claimable(
    state: str | None, lease_until: datetime | None, next_attempt_at: datetime | None, now: datetime
) -> bool:
    """Whether work may be claimed at ``now``: open, its retry due, nobody's live lease on it
    (not even the claimer's: a sweeper must not start again what its own process is running).
    SQL stores say the same in a ``WHERE``."""
    if state not in OPEN_STATES:
        return False
    if next_attempt_at is not None and next_attempt_at > now:
        return False
    return lease_until is None or lease_until <= now


def dies(attempts: int, max_attempts: int, lease_until: datetime | None, now: datetime) -> bool:
    """Whether work whose lease expired is dead rather than due: its last attempt's worker died."""
    return lease_until is not None and lease_until <= now and attempts >= max_attempts


def retry_at(attempts: int, max_attempts: int, now: datetime, backoff: float) -> datetime | None:
    """When to try again after the ``attempts``-th attempt failed: ``backoff`` seconds doubled
    per attempt (at most :data:`MAX_BACKOFF`); ``None`` when that was the last (→ ``dead``)."""
    if attempts >= max_attempts:
        return None
    delay = timedelta(seconds=backoff * 2 ** max(attempts - 1, 0))
    return now + min(delay, MAX_BACKOFF)


def finished_state(outcome: WorkOutcome) -> HandlingState:
    """The state an attempt leaves its work in: ``handled`` without an error, else ``failed``
    (to be retried at ``retry_at``) or, without ``retry_at``, ``dead``."""
    if outcome.get("error") is None:
        return "handled"
    return "failed" if outcome.get("retry_at") is not None else "dead"


def log_limit(query: LogQuery) -> int:
    """How many rows :meth:`~.base.Store.list_log` returns at most (default 100)."""
    return int(query.get("limit", 100))


def died_error(attempts: int) -> str:
    """The error of work whose worker never finished it."""
    return f"lease expired on attempt {attempts}: the worker handling it stopped"


# --- outbox -------------------------------------------------------------------------------------
#: Sends that are not final.
OUTBOX_OPEN = ("queued", "unknown")
#: Final sends a retry opens again (``sent`` is never sent again).
OUTBOX_RETRYABLE = ("queued", "unknown", "failed", "expired")


def outbox_id(row: int) -> str:
    """The id of an outbox send: ``o<n>``."""
    return f"o{row}"


def parse_outbox_id(value: str) -> int | None:
    """``12`` for ``"o12"``; ``None`` when ``value`` is not an outbox id."""
    if len(value) < 2 or value[0] != "o" or not value[1:].isdigit():
        return None
    return int(value[1:])


def send_claimable(
    state: str | None, lease_until: datetime | None, next_attempt_at: datetime | None, now: datetime
) -> bool:
    """Whether an outbox send may be claimed at ``now``: open, due, nobody's live lease on it."""
    if state not in OUTBOX_OPEN:
        return False
    if next_attempt_at is not None and next_attempt_at > now:
        return False
    return lease_until is None or lease_until <= now


#: The fields of a log row a send's outcome rewrites (the rest — id, direction, recipient,
#: creation time — stays).
REWRITTEN_FIELDS = (
    "provider",
    "type",
    "message_id",
    "sender",
    "text",
    "status",
    "error_code",
    "error_message",
    "raw",
    "timestamp",
    "attempts",
    "reason",
    "category",
    "extra",
)


def rewritten_row(entry: LogEntry, early: Iterable[_StatusFields]) -> dict[str, Any]:
    """The fields a send's log row takes from ``entry`` (its outcome), with ``early`` — the
    statuses already received for ``entry.message_id``, in arrival order — merged in."""
    fields = {name: getattr(entry, name) for name in REWRITTEN_FIELDS}
    fields["extra"] = dict(entry.extra)
    fields.update(status_changes(entry.status, entry.category, early))
    return fields


# --- stored values -----------------------------------------------------------------------------
# One encoder for every call: json.dumps with options builds a new one each time (every logged row).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def dumps(value: Any) -> str:
    """Compact JSON; objects JSON does not know (datetimes, decimals) are written as text."""
    return _ENCODER.encode(value)


def json_copy(value: Any) -> Any:
    """``value`` as it reads back from JSON storage (a deep copy)."""
    if value is None:
        return None
    return json.loads(dumps(dict(value) if isinstance(value, Mapping) else value))


# --- values a store cannot hold -----------------------------------------------------------------
#: The range of a signed 64-bit integer column (SQLite ``INTEGER``, PostgreSQL ``bigint``).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Raw data nested deeper than this is kept as its JSON text (a real payload nests under 10).
MAX_DEPTH = 64
_REPLACEMENT = "\ufffd"
E = TypeVar("E")


def storable_text(text: str) -> str:
    """``text`` with what no store holds replaced by U+FFFD: NUL (PostgreSQL refuses it) and
    lone surrogates (nothing encodes them as UTF-8). A surrogate pair is the character it
    encodes."""
    if not text.isascii():
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", _REPLACEMENT) if "\x00" in text else text


def storable(event: E) -> tuple[E, list[str]]:
    """``event`` with every value a store may refuse replaced, and what was replaced (empty when
    nothing was). Text: NUL and lone surrogates become U+FFFD. Typed numbers (an error code)
    outside the signed 64-bit range, or not finite: ``None``; in raw data, a non-finite number
    becomes its text and data nested deeper than :data:`MAX_DEPTH` its JSON text."""
    found: set[str] = set()
    cleaned = _clean(event, 0, found, typed=True)
    return cleaned, sorted(found)


def _clean(value: Any, depth: int, found: set[str], *, typed: bool) -> Any:
    kind = type(value)
    if kind is str:
        text = storable_text(value)
        if text != value:
            found.add("text (NUL or lone surrogates replaced by U+FFFD)")
        return text
    if kind is int:
        if INT64_MIN <= value <= INT64_MAX or not typed:  # JSON holds any integer
            return value
        found.add("a number out of range (set to None; the raw data keeps it)")
        return None
    if kind is float:
        if math.isfinite(value):
            return value
        found.add("a number that is not finite")
        return None if typed else str(value)
    if value is None or kind is bool or isinstance(value, datetime):
        return value
    if depth >= MAX_DEPTH:
        found.add(f"data nested deeper than {MAX_DEPTH} levels (kept as JSON text)")
        try:
            return storable_text(json.dumps(value, default=str))
        except (ValueError, RecursionError):
            return "(nested too deeply to keep)"
    if isinstance(value, Mapping):
        return {
            _clean(str(k), depth + 1, found, typed=False): _clean(v, depth + 1, found, typed=False)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [_clean(v, depth + 1, found, typed=typed and kind is tuple) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            current = getattr(value, f.name)
            new = _clean(current, depth + 1, found, typed=True)
            if new is not current:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value
