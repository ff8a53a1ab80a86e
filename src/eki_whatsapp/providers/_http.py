"""The HTTP engine shared by the providers: one implementation, a sync and an async face.

Every provider operation (send a message, download media, ...) is written once as a
*plan*: a generator that yields :class:`Send` (an ``httpx.Request`` to perform) and
:class:`Sleep` (a back-off pause) steps and returns the result. Two tiny drivers run a plan —
:func:`run_sync` with an ``httpx.Client`` and ``time.sleep``, :func:`run_async` with an
``httpx.AsyncClient`` and ``asyncio.sleep`` — so the request building, response parsing and the
retry policy exist exactly once.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import logging
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import httpx

from .base import OutcomeUnknown, ProviderDown, ProviderError

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("eki_whatsapp.providers")

T = TypeVar("T")

#: Default timeouts: connect quickly, allow the provider a while to answer.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
#: Default pool: enough for high-throughput sending (Meta allows up to 1,000 msg/s per number).
DEFAULT_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30.0)


# --------------------------------------------------------------------------------------------
# Retry policy
# --------------------------------------------------------------------------------------------
async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How retryable errors (:attr:`ProviderError.retryable`) are retried.

    The wait before attempt *n+1* is ``base_delay * 2**(n-1)`` capped at ``max_delay``, with
    "equal jitter" (a random value between half and all of it), and never shorter than the
    provider's ``Retry-After``. No attempt starts once ``deadline`` seconds have passed since the
    first one (a ``Retry-After`` beyond the deadline ends the retries at once). Non-retryable
    errors are raised immediately.

    ``sleep``, ``async_sleep``, ``clock`` and ``random`` can be replaced (tests use a recording
    sleeper and a fake clock, so nothing really waits).

    Example::

        MetaCloud(token, phone_id, retry=RetryPolicy(max_attempts=5, deadline=60))
        MetaCloud(token, phone_id, retry=RetryPolicy.none())   # fail fast
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    deadline: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    async_sleep: Callable[[float], Awaitable[None]] = field(default=_asyncio_sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.deadline < 0:
            raise ValueError("RetryPolicy delays and deadline must not be negative")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """The jittered exponential wait after failed attempt number ``attempt`` (1-based)."""
        full = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(full / 2 + self.random() * full / 2)

    def next_delay(self, attempt: int, error: ProviderError, elapsed: float) -> float | None:
        """Seconds to wait before retrying, or ``None`` when ``error`` must be raised now."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        wait = self.backoff(attempt)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        if elapsed + wait > self.deadline:
            return None
        return wait


# --------------------------------------------------------------------------------------------
# Plans and their drivers
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Send:
    """Step: perform this request; the plan receives the ``httpx.Response`` or the exception."""

    request: httpx.Request
    follow_redirects: bool = False


@dataclass(slots=True)
class Sleep:
    """Step: wait this many seconds before continuing."""

    seconds: float


Step = Send | Sleep
Plan = Generator[Step, Any, T]


@dataclass(slots=True)
class Attempts:
    """Counts HTTP attempts across the exchanges of one operation."""

    count: int = 0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


#: Failures after the request was written: the provider may have acted on it.
AMBIGUOUS_FAILURES: tuple[type[httpx.HTTPError], ...] = (
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
)


def transport_error(provider: str, exc: BaseException, *, unsafe: bool = False) -> ProviderError:
    """A network failure as :class:`ProviderDown` (retryable), without URLs or credentials.

    With ``unsafe`` (a request that must not run twice, such as a send), a failure after the
    request was written (:data:`AMBIGUOUS_FAILURES`) is :class:`OutcomeUnknown` instead: not
    retried, because the provider may have accepted it. Connection failures and connect
    timeouts stay retryable: the request never left.
    """
    if unsafe and isinstance(exc, AMBIGUOUS_FAILURES):
        return OutcomeUnknown(
            f"no answer after the request was sent ({type(exc).__name__}); it may have been accepted",
            provider=provider,
            raw={"exception": type(exc).__name__},
        )
    if isinstance(exc, httpx.TimeoutException):
        text = f"the request timed out ({type(exc).__name__})"
    elif isinstance(exc, httpx.ConnectError):
        text = "could not connect to the API host"
    else:
        text = f"the HTTP request failed ({type(exc).__name__})"
    return ProviderDown(text, provider=provider, raw={"exception": type(exc).__name__})


def exchange(
    provider: str,
    build: Callable[[], httpx.Request],
    parse: Callable[[httpx.Response], T],
    policy: RetryPolicy,
    attempts: Attempts,
    *,
    follow_redirects: bool = False,
) -> Plan[T]:
    """One request/response with retries: build, send, parse; retry what is retryable.

    ``parse`` returns the result or raises a :class:`ProviderError`. The error finally raised
    carries ``attempts`` (the total for the operation so far).
    """
    started = policy.clock()
    attempt = 0
    while True:
        attempt += 1
        attempts.count += 1
        request = build()
        outcome = yield Send(request, follow_redirects)
        try:
            if isinstance(outcome, BaseException):
                raise transport_error(provider, outcome, unsafe=request.method == "POST") from outcome
            return parse(outcome)
        except ProviderError as error:
            wait = policy.next_delay(attempt, error, policy.clock() - started)
            if wait is None:
                error.attempts = attempts.count
                raise
            logger.warning(
                "%s: %s (code %s), retrying in %.2fs (attempt %d of %d)",
                provider,
                type(error).__name__,
                error.code,
                wait,
                attempt + 1,
                policy.max_attempts,
            )
        yield Sleep(wait)


def run_sync(plan: Plan[T], client: httpx.Client, sleep: Callable[[float], None]) -> T:
    """Run ``plan`` with a blocking client."""
    try:
        step = next(plan)
        while True:
            value: Any
            if isinstance(step, Send):
                try:
                    value = client.send(step.request, follow_redirects=step.follow_redirects)
                except httpx.HTTPError as exc:
                    value = exc
            else:
                sleep(step.seconds)
                value = None
            step = plan.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(plan: Plan[T], client: httpx.AsyncClient, sleep: Callable[[float], Awaitable[None]]) -> T:
    """Run ``plan`` with an async client."""
    try:
        step = next(plan)
        while True:
            value: Any
            if isinstance(step, Send):
                try:
                    value = await client.send(step.request, follow_redirects=step.follow_redirects)
                except httpx.HTTPError as exc:
                    value = exc
            else:
                await sleep(step.seconds)
                value = None
            step = plan.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Pooled clients
# --------------------------------------------------------------------------------------------
class ClientOptions(TypedDict, total=False):
    """How a provider's HTTP clients are made; every key is optional.

    Keys: ``timeout`` (an ``httpx.Timeout`` or seconds), ``limits`` (the pool size),
    ``client``/``async_client`` (ready clients, used as given), ``transport``/``async_transport``
    (transports for the clients the provider makes, e.g. ``httpx.MockTransport``).
    """

    timeout: httpx.Timeout | float | None
    limits: httpx.Limits | None
    client: httpx.Client | None
    async_client: httpx.AsyncClient | None
    transport: httpx.BaseTransport | None
    async_transport: httpx.AsyncBaseTransport | None


class HttpOptions(ClientOptions, total=False):
    """:class:`ClientOptions` plus the ``retry`` policy: what every HTTP provider takes."""

    retry: RetryPolicy | None


class _EmptyJar(http.cookiejar.CookieJar):
    """A cookie jar nothing is ever put in."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """The cookies of the clients a provider makes: always none. The provider APIs authenticate
    every request by its own credentials and keep no session in cookies (a jar would only
    collect what a proxy sets), and httpx reads every response into its client's jar (a urllib
    request and response built for ``http.cookiejar``: about a tenth of a send's CPU)."""

    def __init__(self) -> None:
        super().__init__(_EmptyJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


#: Shared by those clients: it stays empty.
_NO_COOKIES = _NoCookies()


class _Cookieless:
    """What the clients a provider makes share: their cookies are :data:`_NO_COOKIES`, and
    setting them changes nothing."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: object) -> None:
        return None


class _Client(_Cookieless, httpx.Client):
    """``httpx.Client`` that keeps no cookies (see :class:`_NoCookies`)."""


class _AsyncClient(_Cookieless, httpx.AsyncClient):
    """``httpx.AsyncClient`` that keeps no cookies (see :class:`_NoCookies`)."""


class Clients:
    """One pooled ``httpx.Client`` and one ``httpx.AsyncClient`` per provider, made on first use.

    Injected clients are used as given and not closed here; injected transports (e.g.
    ``httpx.MockTransport`` or an ASGI/WSGI transport of a fake server) are wrapped in clients
    this object owns. Async clients are made per event loop (connections belong to the loop
    that opened them), so a provider works from several loops, e.g. successive ``asyncio.run``.
    The clients made here keep no cookies (the provider APIs need none).
    """

    def __init__(self, *, user_agent: str = "eki-whatsapp", **options: Unpack[ClientOptions]) -> None:
        timeout = options.get("timeout")
        self.timeout = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        self.limits = options.get("limits") or DEFAULT_LIMITS
        self._client = options.get("client")
        self._own_client = self._client is None
        self._async_client = options.get("async_client")
        # One pooled async client per event loop (connections belong to the loop that made them).
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._transport = options.get("transport")
        self._async_transport = options.get("async_transport")
        self._headers = {"User-Agent": user_agent}
        self._lock = threading.Lock()

    def sync(self) -> httpx.Client:
        """The blocking client (created on first use)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = _Client(
                        timeout=self.timeout,
                        limits=self.limits,
                        transport=self._transport,
                        headers=self._headers,
                    )
                client = self._client
        return client

    def async_(self) -> httpx.AsyncClient:
        """The async client for the running event loop (created on first use in that loop)."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = _AsyncClient(
                timeout=self.timeout,
                limits=self.limits,
                transport=self._async_transport,
                headers=self._headers,
            )
            self._async_clients[loop] = client
        return client

    def close(self) -> None:
        """Close the blocking client if this object made it."""
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the blocking client and the running loop's async client, if this object made them.

        Clients of other (finished) event loops are dropped; their sockets close with the loop.
        """
        self.close()
        loop = asyncio.get_running_loop()
        clients = dict(self._async_clients)
        self._async_clients.clear()
        client = clients.get(loop)
        if client is not None:
            await client.aclose()
