"""Circuit breakers: skip a provider that keeps failing, for a cool-down, then probe it.

A breaker's state is one small record — consecutive failures, when it opened, when a probe
started. With a store, the record is shared by every process on that store (key
``breaker:<provider>`` in the key-value space), changed only by ``compare_and_set`` so that no
process's change is lost: a provider that one process sees failing is skipped by all of them.
Each process keeps a local view and reads the shared record at most every ``sync`` (default
``WHATSAPP_BREAKER_SYNC_SECONDS``), so a decision costs no store read; another process's change
is seen within that time, one's own at once.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import StoreError

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["Breakers", "CircuitBreaker"]

logger = logging.getLogger("eki_whatsapp.routing")

#: The key-value namespace of shared breaker records.
NAMESPACE = "breaker"
_CLOSED: dict[str, Any] = {"failures": 0, "opened_at": None, "probe_at": None}


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class CircuitBreaker:
    """Skips a provider that keeps failing, for a cool-down, then lets one probe through.

    ``closed`` (normal) → ``open`` after ``threshold`` consecutive failures → after ``cooldown``
    ``half-open``: the next send is a probe; its success closes the breaker, its failure opens
    it for another cool-down. A probe whose outcome never comes (its process died) is given up
    after a cool-down. With a ``store``, the state is shared by the processes on it (see the
    module's text); without, it lives in this process.
    """

    def __init__(
        self,
        threshold: int = 3,
        cooldown: timedelta = timedelta(seconds=60),
        *,
        store: Store | None = None,
        name: str = "",
        sync: timedelta = timedelta(seconds=1),
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.name = name
        self.sync = sync
        self._store = store
        self._record: dict[str, Any] = dict(_CLOSED)
        #: The shared record as last read or written: what a compare-and-set expects.
        self._seen: Any = None
        self._synced_at: datetime | None = None
        self._lock = threading.Lock()

    # --- the local view ---------------------------------------------------------------------------
    @property
    def failures(self) -> int:
        """Consecutive failures (of every process sharing the breaker, as last seen)."""
        return int(self._record["failures"])

    @property
    def opened_at(self) -> datetime | None:
        return _time(self._record["opened_at"])

    def _probing(self, now: datetime) -> bool:
        """Whether a probe runs (here or in another process) and has not been given up."""
        probe_at = _time(self._record["probe_at"])
        return probe_at is not None and now - probe_at < self.cooldown

    def state(self, now: datetime) -> str:
        """``closed``, ``open`` or ``half-open``."""
        self._pull(now)
        opened_at = self.opened_at
        if opened_at is None:
            return "closed"
        return "open" if now - opened_at < self.cooldown else "half-open"

    def available(self, now: datetime) -> bool:
        """Whether the provider may be chosen now (open: no; half-open: while no probe runs)."""
        state = self.state(now)
        return state == "closed" or (state == "half-open" and not self._probing(now))

    # --- changes ------------------------------------------------------------------------------------
    def before_attempt(self, now: datetime) -> None:
        """Mark a half-open breaker's probe as running (for every process sharing it)."""
        if self.state(now) != "half-open":
            return

        def probe(record: dict[str, Any]) -> dict[str, Any] | None:
            opened_at = _time(record["opened_at"])
            if opened_at is None or now - opened_at < self.cooldown:
                return None  # closed or opened again meanwhile: no probe to start
            return record | {"probe_at": now.isoformat()}

        self._change(probe)

    def success(self) -> None:
        """The provider worked: close."""
        # Only when this process's view is not closed already: every send succeeds, and they
        # must not all write to the store.
        if self._record != _CLOSED:
            self._change(lambda record: None if record == _CLOSED else dict(_CLOSED))

    def failure(self, now: datetime) -> None:
        """The provider failed with an error another provider could avoid."""

        def fail(record: dict[str, Any]) -> dict[str, Any]:
            failures = int(record["failures"]) + 1
            opens = (
                record["probe_at"] is not None
                or record["opened_at"] is not None
                or failures >= self.threshold
            )
            return {
                "failures": failures,
                "opened_at": now.isoformat() if opens else None,
                "probe_at": None,
            }

        self._change(fail)

    # --- sharing --------------------------------------------------------------------------------------
    def _pull(self, now: datetime) -> None:
        """Read the shared record when the local view is older than ``sync``."""
        if self._store is None:
            return
        synced = self._synced_at
        if synced is not None and synced <= now < synced + self.sync:
            return
        with self._lock:
            try:
                self._adopt(self._store.get_value(NAMESPACE, self.name))
            except StoreError as exc:  # keep the local view; try again next time
                logger.warning("breaker %s: reading its shared state failed: %s", self.name, exc)
            self._synced_at = now

    def _adopt(self, shared: Any) -> None:
        self._seen = shared
        self._record = dict(_CLOSED) if not isinstance(shared, dict) else _CLOSED | shared

    def _change(self, change: Any) -> None:
        """Apply ``change`` (record → new record, or ``None``: no change) to the shared record by
        compare-and-set, retried on the value another process wrote meanwhile."""
        with self._lock:
            if self._store is None:
                new = change(self._record)
                if new is not None:
                    self._record = new
                return
            try:
                for _ in range(8):
                    current = dict(_CLOSED) if not isinstance(self._seen, dict) else _CLOSED | self._seen
                    new = change(current)
                    if new is None:
                        self._record = current
                        return
                    if self._store.compare_and_set(NAMESPACE, self.name, self._seen, new):
                        self._adopt(new)
                        return
                    self._adopt(self._store.get_value(NAMESPACE, self.name))
                logger.warning("breaker %s: its shared state kept changing; changed here only", self.name)
            except StoreError as exc:
                logger.warning(
                    "breaker %s: writing its shared state failed (changed here only): %s", self.name, exc
                )
            new = change(self._record)
            if new is not None:
                self._record = new

    def __repr__(self) -> str:
        return f"CircuitBreaker(failures={self.failures}, opened_at={self.opened_at})"


class Breakers(dict[str, CircuitBreaker]):
    """One :class:`CircuitBreaker` per provider name, made on first use — so a provider
    registered after the router was built has one too (``router.breakers["meta"]``). With a
    ``store``, each is shared by the processes on that store."""

    def __init__(
        self,
        threshold: int = 3,
        cooldown: timedelta = timedelta(seconds=60),
        *,
        store: Store | None = None,
        sync: timedelta = timedelta(seconds=1),
    ) -> None:
        super().__init__()
        self.threshold = threshold
        self.cooldown = cooldown
        self.store = store
        self.sync = sync
        self._lock = threading.Lock()

    def __missing__(self, name: str) -> CircuitBreaker:
        with self._lock:
            return self.setdefault(
                name,
                CircuitBreaker(self.threshold, self.cooldown, store=self.store, name=name, sync=self.sync),
            )
