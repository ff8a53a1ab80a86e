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
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import StoreError
from .events import ChangeEvent, Event, InboundMessage, StatusUpdate
from .handoff import Handoff
from .optout import OptOuts
from .pipeline import Ingested, ingest
from .providers import senders, webhook_readers
from .providers.base import WebhookReader
from .settings import Settings
from .store import Store, open_store
from .webhook import WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from .costs import Costs
    from .messages import Message
    from .providers.base import Provider, SendReceipt
    from .routing import Router
    from .templates import Templates

logger = logging.getLogger("eki_whatsapp")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
Handler = Callable[..., Any]


class Context:
    """What a handler gets besides the event: the bot, and ways to answer.

    ``ctx.reply(...)`` sends on the channel the message came in on.
    """

    __slots__ = ("bot", "event")

    def __init__(self, bot: Bot, event: Event) -> None:
        self.bot = bot
        self.event = event

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
        return self.bot.router.send(inbound.sender, message, inbound=inbound, **options)

    async def reply_async(self, message: Message | str, **options: Any) -> SendReceipt:
        inbound = self._require_message("reply_async")
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
        """Answer a webhook request (sync face). Handlers run after, or before if ``inline``."""
        result = self._ingest(request)
        for event in result.events:
            if type(event) is StatusUpdate and self.inline and not self._status_handlers:
                self._before_handlers(event)  # only the router's bookkeeping to do
            elif not self._has_work(event):
                continue
            elif self.inline:
                self._run_sync(event)
            else:
                self._track(self._executor.submit(self._run_sync, event))
        return result.response

    async def handle_async(self, request: WebhookRequest) -> WebhookResponse:
        """Answer a webhook request (async face)."""
        result = self._ingest(request)
        for event in result.events:
            if not self._has_work(event):
                continue
            if self.inline:
                await self._run_async(event)
            else:
                self._track(asyncio.get_running_loop().create_task(self._run_async(event)))
        return result.response

    def _ingest(self, request: WebhookRequest) -> Ingested:
        try:
            return ingest(self, request)
        except StoreError:
            logger.exception("store failure while logging a webhook; answering 503 so it is retried")
            return Ingested(WebhookResponse.text(503, "store unavailable, retry later"), [])

    # --- handler dispatch ----------------------------------------------------------------------
    def _has_work(self, event: Event) -> bool:
        """Whether anything reacts to this event (skips dispatch overhead when nothing does)."""
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

    def _before_handlers(self, event: Event) -> None:
        """Internal reactions to an event (the router's late-failure handling, template states)."""
        if isinstance(event, StatusUpdate):
            try:
                (self._router or self.router).on_status(event)
            except Exception:
                logger.exception("router failed on status %s of %s", event.status, event.message_id)
        elif isinstance(event, ChangeEvent) and _about_templates(event):
            try:
                self.templates.on_change(event)
            except Exception:
                logger.exception("template webhook %s could not be applied", getattr(event, "field", "?"))

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
            try:
                self.router.send(
                    event.sender, optouts.confirmation(action, language), inbound=event, exempt=True
                )
            except Exception:
                logger.exception("the %s confirmation to %s could not be sent", action, event.sender)
            return False
        if optouts.enabled and optouts.is_opted_out(event.sender):
            logger.info("message %s from opted-out %s logged, not answered", event.id, event.sender)
            return False
        return not self.handoff.is_human(event.sender)

    def _run_sync(self, event: Event) -> None:
        self._before_handlers(event)
        if not self._bot_answers(event):
            return
        ctx = Context(self, event)
        for handler in self._handlers_for(event):
            try:
                if handler.is_async:
                    self._loop_thread.run(handler.call(event, ctx))
                else:
                    handler.call(event, ctx)
            except Exception:
                logger.exception("handler %s failed on %s %s", handler.name, event.kind, _event_id(event))

    async def _run_async(self, event: Event) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._before_handlers, event)
        if not await loop.run_in_executor(self._executor, self._bot_answers, event):
            return
        ctx = Context(self, event)
        for handler in self._handlers_for(event):
            try:
                if handler.is_async:
                    await handler.call(event, ctx)
                else:
                    await loop.run_in_executor(self._executor, functools.partial(handler.call, event, ctx))
            except Exception:
                logger.exception("handler %s failed on %s %s", handler.name, event.kind, _event_id(event))

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
        """Wait for background handlers, then close providers and the store."""
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
