"""What both fake provider APIs share: recording, failure injection, latency, outages and the
status-webhook emitter."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
from typing_extensions import Self

from ._fake_rules import FailureInjection, OutageMode, _DeliveryFailure, _Rule, normalize_address
from ._http import RawRequest, Reply
from .payloads import Payload

#: Queued status webhooks beyond this are dropped (and recorded as dropped).
MAX_QUEUED_WEBHOOKS = 10_000


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a fake received, with its parsed body and the status it answered.

    ``headers`` has the ``Authorization`` value redacted.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    json: Any = field(default=None, repr=False)
    form: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    status: int = 0

    def form_value(self, name: str) -> str | None:
        """First value of a form parameter (Twilio)."""
        for key, value in self.form:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class SentMessage:
    """A message a fake accepted.

    Attributes:
        provider: ``"meta"`` or ``"twilio"``.
        id: the wamid / ``SM…`` returned to the sender.
        to: the recipient as sent (Meta ``to``/``recipient``; Twilio ``To``, ``whatsapp:`` removed).
        type: Meta ``type``; Twilio ``text``, ``media``, ``template`` (``ContentSid``) or ``location``.
        text: the text body or caption, when any.
        body: the parsed request (Meta JSON object; Twilio form parameters as a dict).
        status: the latest status emitted for it (``accepted`` / ``queued`` until then).
        statuses: every status emitted, in order.
    """

    provider: str
    id: str
    to: str
    type: str
    text: str | None
    body: Mapping[str, Any] = field(repr=False)
    status: str = "accepted"
    statuses: list[str] = field(default_factory=list)
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    #: Status webhook target captured at send time (Twilio ``StatusCallback``).
    callback_url: str | None = field(default=None, repr=False)

    @property
    def is_template(self) -> bool:
        """Whether it was a template (Meta ``type: template``, Twilio ``ContentSid``)."""
        return self.type == "template"


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One status webhook a fake posted (or tried to).

    ``http_status`` is ``None`` when the post did not get an answer; ``error`` then says why.
    """

    url: str | None
    message_id: str
    status: str
    http_status: int | None
    error: str | None
    payload: Payload = field(repr=False)

    @property
    def ok(self) -> bool:
        """Whether the webhook answered 2xx."""
        return self.http_status is not None and 200 <= self.http_status < 300


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == "authorization":
            scheme = value.split(" ", 1)[0]
            value = f"{scheme} ***"
        out[name] = value
    return out


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic …`` → (user, password)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class FakeProviderAPI(FailureInjection):
    """Base of :class:`FakeGraphAPI` and :class:`FakeTwilioAPI` (see those)."""

    provider: str = ""

    def __init__(
        self,
        *,
        webhook_url: str | None,
        auto_status: Sequence[str],
        host: str,
        port: int,
    ) -> None:
        self.webhook_url = webhook_url
        #: Statuses emitted for every accepted message, in order (``()``: none).
        self.auto_status: tuple[str, ...] = tuple(auto_status)
        #: Seconds every API request waits before it is answered.
        self.latency = 0.0
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentMessage] = []
        self.webhooks: list[WebhookDelivery] = []
        self._state = threading.RLock()
        self._rules: list[_Rule] = []
        self._delivery_failures: dict[str, _DeliveryFailure] = {}
        self._outage_mode: OutageMode | None = None
        self._stopping = threading.Event()
        self._queue: deque[tuple[SentMessage, str, int | None]] = deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._worker: threading.Thread | None = None
        self._client: httpx.Client | None = None
        super().__init__(self._serve, host, port)

    # --- to implement ------------------------------------------------------------------------
    def _route(self, request: RawRequest) -> Reply:
        raise NotImplementedError

    def _error_reply(self, code: int | None, http_status: int | None, message: str | None) -> Reply:
        raise NotImplementedError

    def _status_payload(self, message: SentMessage, status: str, error_code: int | None) -> Payload:
        raise NotImplementedError

    def _status_target(self, message: SentMessage) -> tuple[str | None, str | None]:
        """(url, secret) a status webhook for ``message`` goes to."""
        raise NotImplementedError

    def _outage_reply(self) -> Reply:
        raise NotImplementedError

    def _on_status(self, message: SentMessage, status: str) -> None:
        """Hook: a status was applied to ``message``."""

    # --- serving -----------------------------------------------------------------------------
    def _serve(self, request: RawRequest) -> Reply:
        if self.latency > 0:
            self._stopping.wait(self.latency)
        mode = self._outage_mode
        if mode == "drop" or mode == "refuse":
            return Reply(0, drop=True)
        reply = self._outage_reply() if mode == "503" else self._route(request)
        self._record(request, reply)
        return reply

    def _record(self, request: RawRequest, reply: Reply) -> None:
        ctype = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
        parsed_json: Any = None
        form: tuple[tuple[str, str], ...] = ()
        if ctype == "application/json":
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                parsed_json = json.loads(request.body)
        elif ctype == "application/x-www-form-urlencoded":
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                form = tuple(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query_params,
            headers=redact_headers(request.headers),
            body=request.body,
            json=parsed_json,
            form=form,
            status=reply.status,
        )
        with self._state:
            self.requests.append(recorded)

    def _accept(self, message: SentMessage) -> Callable[[], None]:
        """Record an accepted message; returns what to run once the response is written."""
        with self._state:
            self.sent.append(message)
            failure = self._delivery_failures.get(normalize_address(message.to))
        plan: list[tuple[str, int | None]]
        if failure is not None and (failure.templates_too or not message.is_template):
            plan = [(failure.status, failure.code)]
        else:
            plan = [(status, None) for status in self.auto_status]
        # Counted as in flight from now on, so that flush() cannot return between the response
        # reaching the client and the statuses being queued.
        with self._cond:
            self._busy += 1
        return lambda: self._plan(message, plan)

    def _plan(self, message: SentMessage, plan: list[tuple[str, int | None]]) -> None:
        try:
            for status, code in plan:
                self._enqueue(message, status, code)
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    # --- status webhooks -------------------------------------------------------------------------
    def message(self, message_id: str) -> SentMessage:
        """The accepted message with this id (``KeyError`` when unknown)."""
        with self._state:
            for item in self.sent:
                if item.id == message_id:
                    return item
        raise KeyError(f"no message {message_id!r} was sent to this fake")

    def emit_statuses(self, message_id: str, statuses: Sequence[str] | None = None) -> None:
        """Queue status webhooks for a sent message (default: ``auto_status``); see :meth:`flush`."""
        message = self.message(message_id)
        for status in statuses if statuses is not None else self.auto_status:
            self._enqueue(message, status, None)

    def emit_status(self, message_id: str, status: str, *, error_code: int | None = None) -> WebhookDelivery:
        """Post one status webhook now (after the queued ones) and return the delivery."""
        self.flush()
        return self._deliver(self.message(message_id), status, error_code)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued status webhook was posted; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._busy == 0, timeout)

    async def flush_async(self, timeout: float | None = 10.0) -> bool:
        """:meth:`flush` for async tests (waits in a worker thread)."""
        return await asyncio.to_thread(self.flush, timeout)

    def _enqueue(self, message: SentMessage, status: str, code: int | None) -> None:
        with self._cond:
            if self._stopping.is_set():
                return
            if len(self._queue) >= MAX_QUEUED_WEBHOOKS:
                payload = self._status_payload(message, status, code)
                with self._state:
                    self.webhooks.append(
                        WebhookDelivery(None, message.id, status, None, "dropped: queue full", payload)
                    )
                return
            self._queue.append((message, status, code))
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name=f"eki-whatsapp-fake-{self.provider}-webhooks", daemon=True
                )
                self._worker.start()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._stopping.is_set())
                if self._stopping.is_set():
                    self._queue.clear()
                    self._cond.notify_all()
                    return
                message, status, code = self._queue.popleft()
                self._busy += 1
            try:
                self._deliver(message, status, code)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, message: SentMessage, status: str, code: int | None) -> WebhookDelivery:
        with self._state:
            message.status = status
            message.statuses.append(status)
        self._on_status(message, status)
        payload = self._status_payload(message, status, code)
        url, secret = self._status_target(message)
        return self._post_webhook(url, secret, payload, message.id, status)

    def _post_webhook(
        self,
        url: str | None,
        secret: str | None,
        payload: Payload,
        message_id: str,
        status: str,
        *,
        refusals_fail: bool = True,
    ) -> WebhookDelivery:
        """Post a signed webhook to the bot and record the delivery (``refusals_fail``: an
        answer other than 2xx counts as a failed delivery, its body as the error)."""
        http_status: int | None = None
        error: str | None = None
        if url is None:
            error = "no webhook URL configured"
        else:
            try:
                response = payload.post(url, secret=secret, client=self._http())
                http_status = response.status_code
                if refusals_fail and not 200 <= http_status < 300:
                    error = response.text[:200]
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        delivery = WebhookDelivery(url, message_id, status, http_status, error, payload)
        with self._state:
            self.webhooks.append(delivery)
        return delivery

    def _http(self) -> httpx.Client:
        with self._state:
            if self._client is None:
                self._client = httpx.Client(timeout=10.0)
            return self._client

    # --- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> Self:
        """Forget recorded requests, messages and deliveries, and every injected failure."""
        self.flush()
        with self._state:
            self.requests.clear()
            self.sent.clear()
            self.webhooks.clear()
        return self.clear_failures()

    def close(self) -> None:
        """Stop the server and the webhook worker (queued webhooks are dropped)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        worker = self._worker
        if worker is not None:
            worker.join(timeout=15)
        super().close()
        with self._state:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        state = f", outage={self._outage_mode}" if self._outage_mode else ""
        return f"{type(self).__name__}({self.base_url}, sent={len(self.sent)}{state})"


def media_reply(found: tuple[str, bytes] | None) -> Reply:
    """A media download: ``(content type, bytes)`` as they were stored, or 404."""
    if found is None:
        return Reply(404, {"Content-Type": "text/plain"}, b"Not Found")
    return Reply(200, {"Content-Type": found[0]}, found[1])


def json_reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON response."""
    all_headers = {"Content-Type": "application/json; charset=utf-8"}
    all_headers.update(headers or {})
    return Reply(status, all_headers, json.dumps(body).encode("utf-8"))
