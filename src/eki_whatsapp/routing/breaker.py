"""Circuit breakers: skip a provider that keeps failing, for a cool-down, then probe it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

__all__ = ["Breakers", "CircuitBreaker"]


class CircuitBreaker:
    """Skips a provider that keeps failing, for a cool-down, then lets one probe through.

    ``closed`` (normal) → ``open`` after ``threshold`` consecutive failures → after ``cooldown``
    ``half-open``: the next send is a probe; its success closes the breaker, its failure opens
    it for another cool-down. State lives in the process (each worker learns on its own).
    """

    def __init__(self, threshold: int = 3, cooldown: timedelta = timedelta(seconds=60)) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: datetime | None = None
        self.probing = False
        self._lock = threading.Lock()

    def state(self, now: datetime) -> str:
        """``closed``, ``open`` or ``half-open``."""
        if self.opened_at is None:
            return "closed"
        return "open" if now - self.opened_at < self.cooldown else "half-open"

    def available(self, now: datetime) -> bool:
        """Whether the provider may be chosen now (open: no; half-open: while no probe runs)."""
        state = self.state(now)
        return state == "closed" or (state == "half-open" and not self.probing)

    def before_attempt(self, now: datetime) -> None:
        """Mark a half-open breaker's probe as running."""
        with self._lock:
            if self.state(now) == "half-open":
                self.probing = True

    def success(self) -> None:
        """The provider worked: close."""
        with self._lock:
            self.failures = 0
            self.opened_at = None
            self.probing = False

    def failure(self, now: datetime) -> None:
        """The provider failed with an error another provider could avoid."""
        with self._lock:
            self.failures += 1
            if self.probing or self.opened_at is not None or self.failures >= self.threshold:
                self.opened_at = now
            self.probing = False

    def __repr__(self) -> str:
        return f"CircuitBreaker(failures={self.failures}, opened_at={self.opened_at})"


class Breakers(dict[str, CircuitBreaker]):
    """One :class:`CircuitBreaker` per provider name, made on first use — so a provider
    registered after the router was built has one too (``router.breakers["meta"]``)."""

    def __init__(self, threshold: int = 3, cooldown: timedelta = timedelta(seconds=60)) -> None:
        super().__init__()
        self.threshold = threshold
        self.cooldown = cooldown
        self._lock = threading.Lock()

    def __missing__(self, name: str) -> CircuitBreaker:
        with self._lock:
            return self.setdefault(name, CircuitBreaker(self.threshold, self.cooldown))
