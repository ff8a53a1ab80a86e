"""The application object: one webhook for both providers, handlers, sending.

Example::

    from eki_whatsapp import Bot

    bot = Bot()  # settings from the environment / .env

    @bot.on_message
    def echo(message, ctx):
        ctx.reply(f"You said: {message.text}")

    # in any framework:  response = bot.handle(WebhookRequest(method, url, headers, query, body))
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import StoreError
from .events import ChangeEvent, Event, InboundMessage, StatusUpdate
from .handling import Sweeper, event_of, idempotency_base
from .handoff import Handoff
from .optout import OptOuts
from .pipeline import Ingested, ingest
from .providers import senders, webhook_readers
from .providers.base import WebhookReader
from .runners import Runner, Work, make_runner
from .settings import Settings
from .store import Store, open_store, rules
from .store.base import Lease, utcnow
from .webhook import WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from .costs import Costs
    from .messages import Message
    from .providers.base import Provider, SendReceipt
    from .routing import Router
    from .templates import Templates

logger = logging.getLogger("eki_whatsapp")
_HOST = socket.gethostname()

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
Handler = Callable[..., Any]


class Context:
    """What a handler gets besides the event: the bot, and ways to answer.

    ``ctx.reply(...)`` sends on the channel the message came in on.
    """

    __slots__ = ("_key_base", "_sends", "bot", "event", "work_id")

    def __init__(self, bot: Bot, event: Event, work_id: str | None = None) -> None:
        self.bot = bot
        self.event = event
        #: The store's id of this handling (``None`` when the event is handled without a record).
        self.work_id = work_id
        self._key_base = idempotency_base(event, work_id)
        self._sends = 0

    def idempotency_key(self) -> str | None:
        """The key of this handling's next send: the event and the send's ordinal, so the n-th
        reply of a handler run again after a crash has the key it had the first time (and the
        router returns the first receipt instead of sending twice). ``ctx.reply`` takes one
        for every send; call it yourself to pass one to ``bot.send(..., idempotency_key=)``."""
        if self._key_base is None:
            return None
        self._sends += 1
        return f"{self._key_base}#{self._sends}"

    @property
    def message(self) -> InboundMessage | None:
        return self.event if isinstance(self.event, InboundMessage) else None

    @property
    def provider(self) -> str:
        return self.event.provider

    @property
    def user(self) -> str | None:
        """The user of this conversation (sender of a message, recipient of a status)."""
        if isinstance(self.event, InboundMessage):
            return self.event.sender
        if isinstance(self.event, StatusUpdate):
            return self.event.recipient or self.event.recipient_user_id
        return None

    @property
    def store(self) -> Store:
        return self.bot.store

    @property
    def logger(self) -> logging.Logger:
        return logger

    def reply(self, message: Message | str, **options: Any) -> SendReceipt:
        """Answer the user on the inbound channel (a ``str`` becomes a ``Text``)."""
        inbound = self._require_message("reply")
        if "idempotency_key" not in options:
            options["idempotency_key"] = self.idempotency_key()
        return self.bot.router.send(inbound.sender, message, inbound=inbound, **options)

    async def reply_async(self, message: Message | str, **options: Any) -> SendReceipt:
        inbound = self._require_message("reply_async")
        if "idempotency_key" not in options:
            options["idempotency_key"] = self.idempotency_key()
        return await self.bot.router.send_async(inbound.sender, message, inbound=inbound, **options)

    def mark_as_read(self, *, typing: bool = False) -> bool:
        """Mark the message read (Meta; with ``typing=True`` also show the typing indicator).

        Returns ``False`` where the provider has no read receipts (Twilio).
        """
        inbound = self._require_message("mark_as_read")
        provider = self.bot.providers.get(inbound.provider)
        mark = getattr(provider, "mark_as_read", None)
        if mark is None:
            return False
        mark(inbound.id, typing=typing)
        return True

    async def mark_as_read_async(self, *, typing: bool = False) -> bool:
        inbound = self._require_message("mark_as_read_async")
        provider = self.bot.providers.get(inbound.provider)
        mark = getattr(provider, "mark_as_read_async", None)
        if mark is None:
            return False
        await mark(inbound.id, typing=typing)
        return True

    def _require_message(self, what: str) -> InboundMessage:
        if not isinstance(self.event, InboundMessage):
            raise TypeError(f"ctx.{what}() needs an inbound message; this handler got {self.event.kind}")
        return self.event

    def __repr__(self) -> str:
        return f"Context({self.event.kind} {self.provider})"


class _Registered:
    """A handler plus how to call it."""

    __slots__ = ("filter", "func", "is_async", "name", "wants_ctx")

    def __init__(self, func: Handler, event_filter: Callable[[Any], bool] | None = None) -> None:
        self.func = func
        self.filter = event_filter
        self.name = getattr(func, "__qualname__", None) or type(func).__name__
        target = func
        if not inspect.isroutine(func) and not isinstance(func, functools.partial):
            target = func.__call__  # type: ignore[operator]
        self.is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(func)
        self.wants_ctx = _arity(target) >= 2

    def call(self, event: Event, ctx: Context) -> Any:
        return self.func(event, ctx) if self.wants_ctx else self.func(event)


def _arity(func: Callable[..., Any]) -> int:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return 2
    count = 0
    for param in sig.parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return 2
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


class _LoopThread:
    """One long-lived event loop in a daemon thread, for async handlers under the sync face.

    Async clients (httpx, openai) bind to a loop, so every async handler runs on this one.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="eki-whatsapp-loop", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def current(self) -> asyncio.AbstractEventLoop | None:
        """The loop, if started."""
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop())
        return future.result()

    def stop(self) -> None:
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None


class Bot:
    """A WhatsApp bot on Meta Cloud API and/or Twilio.

    Args:
        settings: configuration; read from the environment and ``.env`` when omitted.
        store: where to log and remember; from ``WHATSAPP_STORE_URL`` (SQLite) when omitted.
        providers: ``{"meta": ..., "twilio": ...}`` senders; built from the settings when omitted.
            A provider of your own (``{"pigeon": Pigeon(...)}``) that is also a
            :class:`~eki_whatsapp.providers.base.WebhookReader` reads its own webhooks, before
            the built-in readers (docs/writing-a-provider.md).
        inline: run handlers before answering the webhook (default: after, on an executor).
        router: the routing policy; built from the settings when omitted.
        check_settings: fail at start-up when the policy names a provider without credentials.
        name: what the bot is called where a person reads about it (``eki-whatsapp chat``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        providers: Mapping[str, Provider] | None = None,
        inline: bool | None = None,
        router: Router | None = None,
        executor: ThreadPoolExecutor | None = None,
        check_settings: bool = True,
        name: str = "bot",
    ) -> None:
        self.name = name
        self.settings = settings if settings is not None else Settings()
        if check_settings and providers is None:
            self.settings.check()
        self.store: Store = store if store is not None else open_store(self.settings.whatsapp_store_url)
        self.inline = self.settings.whatsapp_inline_handlers if inline is None else inline
        self.providers: dict[str, Provider] = (
            dict(providers) if providers is not None else senders(self.settings)
        )
        for provider in self.providers.values():
            # Providers that keep shared state (Twilio's content cache, pushed templates) keep
            # it in the bot's store, so every process sees the same.
            attach = getattr(provider, "attach_store", None)
            if attach is not None:
                attach(self.store)
        #: Who reads webhooks, in the order they are asked to ``detect`` a request.
        self.webhook_readers: list[WebhookReader] = _readers(self.settings, self.providers)
        self._message_handlers: list[_Registered] = []
        self._status_handlers: list[_Registered] = []
        self._change_handlers: list[_Registered] = []
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=self.settings.whatsapp_handler_workers, thread_name_prefix="eki-whatsapp"
        )
        self._loop_thread = _LoopThread()
        self._pending: set[Future[Any] | asyncio.Task[Any]] = set()
        self._pending_lock = threading.Lock()
        self._router = router
        self._templates: Templates | None = None
        #: Users who wrote STOP/BAJA (or were blocked): sends to them are refused.
        self.optouts = OptOuts(self.store, self.settings)
        #: Who answers each user, the bot or staff (take over, hand back, ask for a person).
        self.handoff = Handoff(self)
        #: Whether the store records work (a store of your own written before durable handling
        #: does not: its events are handled as before, in memory, and lost with the process).
        self.durable = callable(getattr(self.store, "record_work", None))
        if not self.durable:
            logger.warning("%r has no record_work: handling is not durable (docs/store.md)", self.store)
        #: Where claimed work runs (``WHATSAPP_RUNNER``; docs/deployment.md).
        self.runner: Runner = make_runner(self.settings.whatsapp_runner, self)
        self._owner_token = secrets.token_hex(4)
        self._owner: tuple[int, str] = (0, "")
        #: Finds work whose worker died (expired leases) and due retries, here and periodically.
        self.sweeper = Sweeper(self)
        self.sweeper.start()
        self._serving_pid: int | None = None  # the process whose first webhook kicked the sweeper

    # --- wiring ------------------------------------------------------------------------------
    @property
    def router(self) -> Router:
        """The :class:`~eki_whatsapp.routing.Router` every outbound message goes through."""
        if self._router is None:
            from .routing import Router

            self._router = Router.from_bot(self)
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        self._router = router

    @property
    def templates(self) -> Templates:
        """The templates managed from code (:mod:`eki_whatsapp.templates`): push, status, get."""
        if self._templates is None:
            from .templates import Templates

            self._templates = Templates(self.store, self.providers)
        return self._templates

    def on_message(
        self,
        func: F | None = None,
        *,
        types: Iterable[str] | None = None,
        provider: str | None = None,
    ) -> Any:
        """Register a message handler: ``@bot.on_message``, ``@bot.on_message(types=["text"])`` or
        ``bot.on_message(agent)``.

        The handler is called as ``handler(message, ctx)`` (or ``handler(message)`` when it
        takes one argument); it may be ``async``.
        """
        wanted = frozenset(types) if types is not None else None

        def accept(event: InboundMessage) -> bool:
            return (wanted is None or event.type in wanted) and (
                provider is None or event.provider == provider
            )

        return self._register(self._message_handlers, func, accept)

    def on_status(self, func: F | None = None, *, statuses: Iterable[str] | None = None) -> Any:
        """Register a status handler, called as ``handler(status, ctx)``."""
        wanted = frozenset(statuses) if statuses is not None else None
        return self._register(self._status_handlers, func, lambda e: wanted is None or e.status in wanted)

    def on_change(self, func: F | None = None, *, fields: Iterable[str] | None = None) -> Any:
        """Register a handler for other notifications (template status, account update, ...)."""
        wanted = frozenset(fields) if fields is not None else None
        return self._register(self._change_handlers, func, lambda e: wanted is None or e.field in wanted)

    def _register(self, where: list[_Registered], func: F | None, accept: Callable[[Any], bool]) -> Any:
        def decorator(f: F) -> F:
            where.append(_Registered(f, accept))
            return f

        return decorator(func) if func is not None else decorator

    # --- webhook -----------------------------------------------------------------------------
    def handle(self, request: WebhookRequest) -> WebhookResponse:
        """Answer a webhook request (sync face). Handlers run after, or before if ``inline``.

        Every event with work is recorded as such with its log row before the answer, so work
        lost with this process is found again (docs/deployment.md, "Durable handling").
        """
        self._check_fork()
        result = self._ingest(request)
        for work in self._works(result):
            if self.inline:
                self.process_work(work)
            else:
                self.runner.submit(work)
        return result.response

    async def handle_async(self, request: WebhookRequest) -> WebhookResponse:
        """Answer a webhook request (async face)."""
        self._check_fork()
        result = self._ingest(request)
        for work in self._works(result):
            if self.inline:
                await self._process_async(work)
            elif self.runner.leases_here:  # handlers run on this loop, as async clients expect
                self._track(asyncio.get_running_loop().create_task(self._process_async(work)))
            else:
                self.runner.submit(work)
        return result.response

    def _works(self, result: Ingested) -> list[Work]:
        """The work the pipeline recorded, with the lease it wrote (``None``: to be claimed); with
        a store that records no work, the events to handle (an empty id: nothing to record)."""
        if not self.durable:
            return [Work("", event, result.lease) for event in result.events if self.needs_handling(event)]
        return [
            Work(work_id, event, result.lease)
            for event, work_id in zip(result.events, result.work, strict=True)
            if work_id is not None
        ]

    def _ingest(self, request: WebhookRequest) -> Ingested:
        try:
            return ingest(self, request)
        except StoreError:
            logger.exception("store failure while logging a webhook; answering 503 so it is retried")
            return Ingested(WebhookResponse.text(503, "store unavailable, retry later"), [])

    # --- handler dispatch ----------------------------------------------------------------------
    def needs_handling(self, event: Event) -> bool:
        """Whether anything reacts to this event: then it is recorded as work to do (and nothing
        is written or dispatched for an event nothing reacts to)."""
        if isinstance(event, InboundMessage):
            if self._message_handlers:
                return True
            return self.optouts.enabled and self.optouts.classify(event) is not None
        if isinstance(event, StatusUpdate):
            return True  # the router watches statuses for late failures
        return bool(self._change_handlers) or _about_templates(event)

    def _handlers_for(self, event: Event) -> list[_Registered]:
        if isinstance(event, InboundMessage):
            handlers = self._message_handlers
        elif isinstance(event, StatusUpdate):
            handlers = self._status_handlers
        else:
            handlers = self._change_handlers
        return [h for h in handlers if h.filter is None or h.filter(event)]

    def _before_handlers(self, event: Event) -> str | None:
        """Internal reactions to an event (the router's late-failure handling, template states);
        the error, if any."""
        if isinstance(event, StatusUpdate):
            try:
                (self._router or self.router).on_status(event)
            except Exception as exc:
                logger.exception("router failed on status %s of %s", event.status, event.message_id)
                return f"router: {type(exc).__name__}: {exc}"
        elif isinstance(event, ChangeEvent) and _about_templates(event):
            try:
                self.templates.on_change(event)
            except Exception as exc:
                logger.exception("template webhook %s could not be applied", getattr(event, "field", "?"))
                return f"templates: {type(exc).__name__}: {exc}"
        return None

    def _bot_answers(self, event: Event) -> bool:
        """Opt-out keywords and handoff: whether the bot's handlers may answer this event.

        A keyword is answered here, once, with a confirmation; an opted-out user's other messages
        and the messages of a conversation staff took over are logged but not answered.
        """
        if not isinstance(event, InboundMessage):
            return True
        optouts = self.optouts
        keyword = optouts.classify(event) if optouts.enabled else None
        if keyword is not None:
            action, language = keyword
            was_out = optouts.is_opted_out(event.sender)
            if action == "stop" and not was_out:
                optouts.opt_out(event.sender, keyword=event.text.strip() if event.text else None)
            elif action == "start" and was_out:
                optouts.opt_in(event.sender)
            elif action == "stop":
                return False  # already out: the confirmation was sent before (answer once)
            else:
                return not self.handoff.is_human(event.sender)  # START from a subscriber: a message
            base = idempotency_base(event, None)
            try:
                self.router.send(
                    event.sender,
                    optouts.confirmation(action, language),
                    inbound=event,
                    exempt=True,
                    idempotency_key=None if base is None else f"{base}#{action}",
                )
            except Exception:
                logger.exception("the %s confirmation to %s could not be sent", action, event.sender)
            return False
        if optouts.enabled and optouts.is_opted_out(event.sender):
            logger.info("message %s from opted-out %s logged, not answered", event.id, event.sender)
            return False
        return not self.handoff.is_human(event.sender)

    def _run_sync(self, event: Event, work_id: str | None = None) -> str | None:
        """Run the reactions and handlers of an event; the first error (``None``: all went well,
        or the bot does not answer: staff took over, the user opted out)."""
        error = self._before_handlers(event)
        if not self._bot_answers(event):
            return error
        handlers = self._handlers_for(event)
        ctx = Context(self, event, work_id) if handlers else None
        for handler in handlers:
            assert ctx is not None
            try:
                if handler.is_async:
                    self._loop_thread.run(handler.call(event, ctx))
                else:
                    handler.call(event, ctx)
            except Exception as exc:
                logger.exception("handler %s failed on %s %s", handler.name, event.kind, _event_id(event))
                error = error or f"{handler.name}: {type(exc).__name__}: {exc}"
        return error

    async def _run_async(self, event: Event, work_id: str | None = None) -> str | None:
        loop = asyncio.get_running_loop()
        error = await loop.run_in_executor(self._executor, self._before_handlers, event)
        if not await loop.run_in_executor(self._executor, self._bot_answers, event):
            return error
        ctx = Context(self, event, work_id)
        for handler in self._handlers_for(event):
            try:
                if handler.is_async:
                    await handler.call(event, ctx)
                else:
                    await loop.run_in_executor(self._executor, functools.partial(handler.call, event, ctx))
            except Exception as exc:
                logger.exception("handler %s failed on %s %s", handler.name, event.kind, _event_id(event))
                error = error or f"{handler.name}: {type(exc).__name__}: {exc}"
        return error

    # --- durable handling (docs/deployment.md) --------------------------------------------------
    @property
    def owner(self) -> str:
        """Who this process is when it holds a lease (host, process id, a token per bot)."""
        pid = os.getpid()
        if self._owner[0] != pid:  # a fork is another owner
            self._owner = (pid, f"{_HOST}:{pid}:{self._owner_token}")
        return self._owner[1]

    def new_lease(self) -> Lease:
        """A lease for this process, ``WHATSAPP_HANDLER_LEASE_SECONDS`` from now."""
        return Lease(self.owner, utcnow() + timedelta(seconds=self.settings.whatsapp_handler_lease_seconds))

    def _claimed(self, work: Work) -> Work | None:
        """``work`` with its lease and event: claimed here when it was recorded unclaimed (a
        runner that runs work elsewhere), read back from the store when not given."""
        if work.lease is not None and work.event is not None:
            return work
        if work.lease is None:
            item = self.store.claim_work(work.id, self.new_lease(), now=utcnow())
            if item is None:
                return None  # handled, dead, or someone else holds it
            lease: Lease = Lease(item.lease_owner or self.owner, item.lease_until or utcnow())
        else:
            item = self.store.get_work(work.id)
            if item is None:
                return None
            lease = work.lease
        event = work.event or event_of(item)
        if event is None:
            self.store.finish_work(work.id, lease.owner, error="the stored event cannot be read back")
            return None
        return Work(work.id, event, lease, item.attempts)

    def process_work(self, work: Work) -> None:
        """Handle one piece of work where it runs, and record the outcome (runners call this).

        A failed attempt is retried after a backoff; after ``WHATSAPP_HANDLER_MAX_ATTEMPTS`` the
        work is ``dead`` with its error (``eki-whatsapp pending`` shows it).
        """
        if not work.id:  # a store without durable handling: nothing to claim or record
            if work.event is not None:
                self._run_sync(work.event)
            return
        claimed = self._claimed(work)
        if claimed is None or claimed.event is None or claimed.lease is None:
            return
        try:
            error = self._run_sync(claimed.event, claimed.id)
        except Exception as exc:  # the store, opt-outs or handoff failing: try again later
            logger.exception("handling %s failed", claimed.id)
            error = f"{type(exc).__name__}: {exc}"
        self._finish(claimed, error)

    async def _process_async(self, work: Work) -> None:
        if not work.id:  # a store without durable handling
            if work.event is not None:
                await self._run_async(work.event)
            return
        loop = asyncio.get_running_loop()
        claimed = await loop.run_in_executor(self._executor, self._claimed, work)
        if claimed is None or claimed.event is None or claimed.lease is None:
            return
        try:
            error = await self._run_async(claimed.event, claimed.id)
        except Exception as exc:
            logger.exception("handling %s failed", claimed.id)
            error = f"{type(exc).__name__}: {exc}"
        await loop.run_in_executor(self._executor, self._finish, claimed, error)

    def _finish(self, work: Work, error: str | None) -> None:
        assert work.lease is not None
        settings = self.settings
        retry = None
        if error is not None:
            retry = rules.retry_at(
                work.attempts,
                settings.whatsapp_handler_max_attempts,
                utcnow(),
                settings.whatsapp_handler_backoff_seconds,
            )
            if retry is None:
                logger.error("%s is dead after %d attempts: %s", work.id, work.attempts, error)
        try:
            if not self.store.finish_work(work.id, work.lease.owner, error=error, retry_at=retry):
                logger.warning("%s outlived its lease: another worker took it over", work.id)
        except Exception:
            logger.exception("recording the outcome of %s failed; it will be handled again", work.id)

    def _check_fork(self) -> None:
        """At the first webhook of a process, sweep: the bot is serving, its handlers are
        registered. A forked process (gunicorn --preload) gets a sweeper thread of its own."""
        if self._serving_pid != os.getpid():
            if self._serving_pid is not None:
                self.sweeper = Sweeper(self)
                self.sweeper.start()
            self._serving_pid = os.getpid()
            self.sweeper.kick()

    def _track(self, item: Future[Any] | asyncio.Task[Any]) -> None:
        with self._pending_lock:
            self._pending.add(item)
        item.add_done_callback(self._untrack)

    def _untrack(self, item: Future[Any] | asyncio.Task[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(item)

    def run_later(self, coro: Coroutine[Any, Any, Any]) -> None:
        """From an async handler: finish ``coro`` on the running loop after the handler returns,
        so a long wait (the agent's model calls) does not hold a handler worker.
        ``drain()``/``close()`` wait for it; an exception is logged."""
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_log_failure)
        if asyncio.get_running_loop() is self._loop_thread.current():
            done: Future[Any] = Future()  # the sync face's drain() waits on futures
            task.add_done_callback(lambda _: done.set_result(None))
            self._track(done)
        else:
            self._track(task)

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the bot's background loop from sync code and wait for it."""
        return self._loop_thread.run(coro)

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Wait for handlers still running in the background (sync face). ``True`` when idle."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._pending_lock:
                futures = [f for f in self._pending if isinstance(f, Future)]
            if not futures:
                return True
            for fut in futures:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    fut.result(timeout=remaining)
                except Exception:  # noqa: S112 - handler errors are already logged
                    continue
            if deadline is not None and time.monotonic() >= deadline:
                with self._pending_lock:
                    return not any(isinstance(f, Future) and not f.done() for f in self._pending)

    async def drain_async(self) -> None:
        """Wait for handler tasks started by ``handle_async``."""
        while True:
            with self._pending_lock:
                tasks = [t for t in self._pending if isinstance(t, asyncio.Task)]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- sending -------------------------------------------------------------------------------
    def send(
        self,
        to: str,
        message: Message | str,
        *,
        category: str | None = None,
        provider: str | None = None,
        exempt: bool = False,
    ) -> SendReceipt:
        """Send a business-initiated message; the routing policy picks the provider.

        Raises:
            OptedOut: ``to`` opted out (nothing was sent); ``exempt=True`` sends anyway.
        """
        return self.router.send(to, message, category=category, provider=provider, exempt=exempt)

    async def send_async(
        self,
        to: str,
        message: Message | str,
        *,
        category: str | None = None,
        provider: str | None = None,
        exempt: bool = False,
    ) -> SendReceipt:
        return await self.router.send_async(to, message, category=category, provider=provider, exempt=exempt)

    @property
    def costs(self) -> Costs:
        """The cost ledger (``bot.costs.report("2026-11")``)."""
        return self.router.costs

    # --- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the sweeper, wait for background handlers, then close providers and the store."""
        self.sweeper.stop()
        self.runner.close()
        self.drain(timeout=30.0)
        if self._own_executor:
            self._executor.shutdown(wait=True)
        for provider in self.providers.values():
            try:
                provider.close()
            except Exception:
                logger.exception("closing provider %s failed", provider)
        self._loop_thread.stop()
        self.store.close()

    def __enter__(self) -> Bot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bot(policy={self.settings.whatsapp_provider!r}, providers={sorted(self.providers)})"


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background handler work failed", exc_info=task.exception())


def _about_templates(event: Event) -> bool:
    from .providers import template_change

    return isinstance(event, ChangeEvent) and template_change(event) is not None


def _event_id(event: Event) -> str:
    if isinstance(event, InboundMessage):
        return event.id
    if isinstance(event, StatusUpdate):
        return f"{event.message_id}/{event.status}"
    assert isinstance(event, ChangeEvent)
    return event.field


def _readers(settings: Settings, providers: Mapping[str, Provider]) -> list[WebhookReader]:
    """Registered providers that read their own webhooks first, then the built-in readers."""
    own: list[WebhookReader] = [p for p in providers.values() if isinstance(p, WebhookReader)]
    taken = {reader.name for reader in own}
    return own + [reader for reader in webhook_readers(settings) if reader.name not in taken]
