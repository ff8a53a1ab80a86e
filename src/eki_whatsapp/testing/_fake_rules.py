"""Failure injection of the fake provider APIs: errors for the next sends, delivery failures
reported in status webhooks, closed windows and outages (and the address spelling they key on)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from typing_extensions import Self

from ._http import LocalServer, Reply

OutageMode = Literal["refuse", "503", "drop"]


@dataclass(slots=True)
class _Rule:
    code: int | None
    http_status: int | None
    remaining: int | None
    to: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class _DeliveryFailure:
    code: int
    status: str
    templates_too: bool


def normalize_address(value: str | None) -> str:
    """``whatsapp:+1555…`` / ``+1555…`` / ``1555…`` → ``1555…`` (BSUIDs unchanged)."""
    text = (value or "").strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    return text.strip().removeprefix("+")


class _Outage:
    """Returned by ``fake.outage()``: leaving the ``with`` block restores the fake."""

    def __init__(self, fake: FailureInjection) -> None:
        self._fake = fake

    def __enter__(self) -> _Outage:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fake.restore()


class FailureInjection(LocalServer):
    """The failure injection of :class:`~eki_whatsapp.testing._fake.FakeProviderAPI`."""

    provider: str = ""
    #: The provider's error code for a message outside the 24-hour window.
    window_code: int = 0
    latency: float
    _state: threading.RLock
    _rules: list[_Rule]
    _delivery_failures: dict[str, _DeliveryFailure]
    _outage_mode: OutageMode | None

    def _error_reply(self, code: int | None, http_status: int | None, message: str | None) -> Reply:
        raise NotImplementedError

    def _take_failure(self, to: str) -> Reply | None:
        """The injected error for a send to ``to``, if a rule applies (consumes one use)."""
        with self._state:
            for rule in list(self._rules):
                if rule.to is not None and rule.to != to:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return self._error_reply(rule.code, rule.http_status, rule.message)
        return None

    def fail_next(
        self,
        code: int | None = None,
        *,
        http_status: int | None = None,
        times: int | None = 1,
        to: str | None = None,
        message: str | None = None,
    ) -> Self:
        """Answer the next ``times`` sends (``None``: every send) with an error.

        Args:
            code: the provider's error code (e.g. Meta 131056, Twilio 20429); chosen from
                ``http_status`` when omitted.
            http_status: the HTTP status; the code's usual one when omitted.
            to: only sends to this recipient (any spelling: ``whatsapp:+1…``, ``+1…``, ``1…``).
            message: the error message (the provider's usual one when omitted).

        Only message sends count (not mark-as-read, media or lookups). Returns the fake.
        """
        if times is not None and times < 1:
            raise ValueError("fail_next(times=...) must be at least 1, or None for every send")
        rule = _Rule(code, http_status, times, normalize_address(to) if to else None, message)
        with self._state:
            self._rules.append(rule)
        return self

    def fail_delivery(
        self, to: str, code: int | None = None, *, status: str = "failed", templates_too: bool = True
    ) -> Self:
        """Accept sends to ``to`` but report them ``status`` (``failed``) with ``code`` in a
        status webhook instead of the normal statuses (e.g. Meta 131026, Twilio 63024)."""
        default = 131026 if self.provider == "meta" else 63024
        failure = _DeliveryFailure(code if code is not None else default, status, templates_too)
        with self._state:
            self._delivery_failures[normalize_address(to)] = failure
        return self

    def close_window(self, to: str) -> Self:
        """The user's 24-hour window is closed: free-form sends to ``to`` are accepted, then
        fail in a status webhook (Meta 131047, Twilio 63016); templates still go through."""
        return self.fail_delivery(to, self.window_code, templates_too=False)

    def open_window(self, to: str) -> Self:
        """Undo :meth:`close_window` / :meth:`fail_delivery` for ``to``."""
        with self._state:
            self._delivery_failures.pop(normalize_address(to), None)
        return self

    def clear_failures(self) -> Self:
        """Forget every injected failure (rules, delivery failures, outage, latency)."""
        with self._state:
            self._rules.clear()
            self._delivery_failures.clear()
        self.latency = 0.0
        self.restore()
        return self

    def outage(self, mode: OutageMode = "refuse") -> _Outage:
        """Make the API unavailable until :meth:`restore` (or the end of a ``with`` block).

        Modes: ``"refuse"`` — nothing listens on the port (connection refused); ``"503"`` —
        every request gets a 503 in the provider's error shape; ``"drop"`` — connections are
        accepted and closed without an answer.
        """
        if mode not in ("refuse", "503", "drop"):
            raise ValueError("outage(mode=...) must be 'refuse', '503' or 'drop'")
        self._outage_mode = mode
        if mode == "refuse":
            self.pause()
        else:
            self.close_connections()
        return _Outage(self)

    def restore(self) -> None:
        """End an :meth:`outage`."""
        mode, self._outage_mode = self._outage_mode, None
        if mode == "refuse" or not self.listening:
            self.resume()

    @property
    def down(self) -> bool:
        """Whether an outage is on."""
        return self._outage_mode is not None
