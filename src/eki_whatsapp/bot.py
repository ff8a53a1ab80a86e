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
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ._forks import forks
from .background import Background
from .context import Context
from .dispatch import Handler, Handlers
from .errors import ConfigError
from .events import Event, InboundMessage
from .handling import Outcomes, Sweeper, Worker
from .handoff import Handoff
from .optout import OptOuts
from .pipeline import receive
from .providers import senders, webhook_readers
from .providers.base import WebhookReader
from .runners import Runner, Work, make_runner
from .settings import Settings
from .store import Store, open_store
from .store.base import Lease
from .webhook import WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .costs import Costs
    from .messages import Message
    from .providers.base import Provider, SendReceipt
    from .routing import Router, SendOptions
    from .routing.outbox import UndeliverableHook
    from .templates import Templates

logger = logging.getLogger("eki_whatsapp")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

__all__ = ["Bot", "Context", "Handler"]


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
        check_settings: fail at start-up when the policy names a provider without credentials,
            or, with ``WHATSAPP_ENV=production``, a provider in use has no signature secret
            (also when ``providers`` are given).
        name: what the bot is called where a person reads about it (``eki-whatsapp chat``).
        celery_app: your Celery app, for ``WHATSAPP_RUNNER=celery`` (default:
            ``WHATSAPP_CELERY_APP``, or an app built from ``WHATSAPP_CELERY_BROKER_URL``).
        on_undeliverable: called once for each send that finally fails or expires in the
            outbox (as :meth:`on_undeliverable` registers it).
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
        celery_app: Any = None,
        on_undeliverable: UndeliverableHook | None = None,
    ) -> None:
        self.name = name
        #: What :meth:`on_undeliverable` registered (the router's outbox calls them).
        self.undeliverable_hooks: list[UndeliverableHook] = [on_undeliverable] if on_undeliverable else []
        self.settings = settings if settings is not None else Settings()
        if check_settings:  # given providers bring their credentials; production's demands stay
            self.settings.check(credentials=providers is None, providers=providers or ())
        self.store: Store = store if store is not None else open_store(self.settings.whatsapp_store_url)
        _check_durable(self.store)
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
        #: The registered handlers and their dispatch (:mod:`eki_whatsapp.dispatch`).
        self.handlers = Handlers(self)
        #: The handler threads and loop, and what still runs on them (:mod:`eki_whatsapp.background`).
        self.background = Background(executor, self.settings.whatsapp_handler_workers)
        self._router: Router | None = None
        if router is not None:
            self.router = router
        self._templates: Templates | None = None
        #: Users who wrote STOP/BAJA (or were blocked): sends to them are refused.
        self.optouts = OptOuts(self.store, self.settings)
        #: Who answers each user, the bot or staff (take over, hand back, ask for a person).
        self.handoff = Handoff(self)
        # States a message's handler was given, read before a change made here, are read again.
        self.optouts.on_change(self.handlers.states_changed)
        self.handoff.on_change(self.handlers.states_changed)
        #: Where claimed work runs (``WHATSAPP_RUNNER``; docs/deployment.md).
        self.runner: Runner = make_runner(self.settings.whatsapp_runner, self, celery_app=celery_app)
        #: Runs claimed work here and records its outcome (:class:`~eki_whatsapp.handling.Worker`).
        self.worker = Worker(self)
        #: Outcomes of work handled on the bot's own threads, written together
        #: (:class:`~eki_whatsapp.handling.Outcomes`); ``None`` on an executor of yours (whose
        #: threads may need to release what they hold, as Django's connections).
        self.outcomes: Outcomes | None = Outcomes(self.store) if self.background.own_threads else None
        #: Finds work whose worker died (expired leases) and due retries, here and periodically.
        self.sweeper = Sweeper(self)
        self.sweeper.start()
        self._sweeper_forks = forks()  # the process the sweeper thread runs in
        self._serving_forks: int | None = None  # the process whose first webhook kicked the sweeper

    # --- wiring ------------------------------------------------------------------------------
    @property
    def router(self) -> Router:
        """The :class:`~eki_whatsapp.routing.Router` every outbound message goes through."""
        if self._router is None:
            from .routing import Router

            self.router = Router.from_bot(self)
        assert self._router is not None
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        router.outbox.hooks = self.undeliverable_hooks  # one list: hooks registered later count
        self._router = router

    def on_undeliverable(self, func: F) -> F:
        """Register a function called once for each send that finally fails or expires in the
        outbox, with an :class:`~eki_whatsapp.routing.outbox.Undelivered` (docs/deployment.md)::

            @bot.on_undeliverable
            def tell_staff(gone):
                alert(f"{gone.to} never got {gone.message}: {gone.reason}")
        """
        self.undeliverable_hooks.append(func)
        return func

    def flush_outbox(self, *, batch: int = 100) -> int:
        """Deliver the outbox sends that are due, here and now (the sweeper does it every
        ``WHATSAPP_SWEEP_INTERVAL_SECONDS``); how many were tried. A backlog (after an outage)
        is drained batch by batch, for at most half a lease per call."""
        lease = self.settings.whatsapp_handler_lease_seconds
        deadline = time.monotonic() + lease / 2
        tried = 0
        while True:
            claimed = self.router.outbox.deliver_due(self.owner, lease, limit=batch)
            tried += claimed
            if claimed < batch or time.monotonic() >= deadline:
                return tried

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

        return self.handlers.register(self.handlers.messages, func, accept)

    def on_status(self, func: F | None = None, *, statuses: Iterable[str] | None = None) -> Any:
        """Register a status handler, called as ``handler(status, ctx)``."""
        wanted = frozenset(statuses) if statuses is not None else None
        return self.handlers.register(
            self.handlers.statuses, func, lambda e: wanted is None or e.status in wanted
        )

    def on_change(self, func: F | None = None, *, fields: Iterable[str] | None = None) -> Any:
        """Register a handler for other notifications (template status, account update, ...)."""
        wanted = frozenset(fields) if fields is not None else None
        return self.handlers.register(
            self.handlers.changes, func, lambda e: wanted is None or e.field in wanted
        )

    # --- webhook -----------------------------------------------------------------------------
    def handle(self, request: WebhookRequest) -> WebhookResponse:
        """Answer a webhook request (sync face). Handlers run after, or before if ``inline``.

        Every event with work is recorded as such with its log row before the answer, so work
        lost with this process is found again (docs/deployment.md, "Durable handling").
        """
        self._check_fork()
        result = receive(self, request)
        for work in result.works:
            try:
                if self.inline:
                    self.process_work(work)
                else:
                    self.runner.submit(work)
            except Exception:  # recorded already: the sweeper hands it out again
                logger.exception("handing out %s failed; it stays to be handled", work.id or "an event")
        return result.response

    async def handle_async(self, request: WebhookRequest) -> WebhookResponse:
        """Answer a webhook request (async face)."""
        self._check_fork()
        result = receive(self, request)
        for work in result.works:
            try:
                if self.inline:
                    await self.worker.process_async(work)
                elif getattr(self.runner, "in_process", self.runner.leases_here):
                    # handlers run on this loop, as async clients expect (a runner written before
                    # ``in_process`` existed ran work here when it leased it here)
                    self.background.track(
                        asyncio.get_running_loop().create_task(self.worker.process_async(work))
                    )
                else:
                    self.runner.submit(work)
            except Exception:  # recorded already: the sweeper hands it out again
                logger.exception("handing out %s failed; it stays to be handled", work.id or "an event")
        return result.response

    # --- handler dispatch ----------------------------------------------------------------------
    def needs_handling(self, event: Event) -> bool:
        """Whether anything reacts to this event: then it is recorded as work to do (and nothing
        is written or dispatched for an event nothing reacts to)."""
        return self.handlers.needs_handling(event)

    # --- durable handling (docs/deployment.md) --------------------------------------------------
    @property
    def owner(self) -> str:
        """Who this process is when it holds a lease (host, process id, a token per bot)."""
        return self.worker.owner

    def new_lease(self) -> Lease:
        """A lease for this process, ``WHATSAPP_HANDLER_LEASE_SECONDS`` from now."""
        return self.worker.new_lease()

    def process_work(self, work: Work) -> None:
        """Handle one piece of work where it runs, and record the outcome (runners call this).

        A failed attempt is retried after a backoff; after ``WHATSAPP_HANDLER_MAX_ATTEMPTS`` the
        work is ``dead`` with its error (``eki-whatsapp pending`` shows it).
        """
        self.worker.process(work)

    def _check_fork(self) -> None:
        """At the first webhook of a process, sweep: the bot is serving, its handlers are
        registered. A forked process (gunicorn --preload) gets a sweeper thread of its own: the
        parent's stayed behind, whether or not the parent served."""
        process = forks()  # not os.getpid(): a system call on every request
        if self._serving_forks != process:
            if self._sweeper_forks != process:
                self.sweeper = Sweeper(self)
                self.sweeper.start()
                self._sweeper_forks = process
            self._serving_forks = process
            self.sweeper.kick()

    def run_later(self, coro: Coroutine[Any, Any, Any]) -> None:
        """From an async handler: finish ``coro`` on the running loop after the handler returns,
        so a long wait (the agent's model calls) does not hold a handler worker.
        ``drain()``/``close()`` wait for it; an exception is logged."""
        self.background.run_later(coro)

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the bot's background loop from sync code and wait for it."""
        return self.background.run(coro)

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Wait for handlers still running in the background (sync face), and write their
        outcomes. ``True`` when idle."""
        idle = self.background.drain(timeout)
        if self.outcomes is not None:
            self.outcomes.flush()
        return idle

    async def drain_async(self) -> None:
        """Wait for handler tasks started by ``handle_async``."""
        await self.background.drain_async()

    # --- sending -------------------------------------------------------------------------------
    def send(self, to: str, message: Message | str, **options: Unpack[SendOptions]) -> SendReceipt:
        """Send a business-initiated message; the routing policy picks the provider
        (``options``: :class:`~eki_whatsapp.routing.SendOptions`: ``category``, ``provider``,
        ``exempt``, ``queue``...).

        When no provider can take it now (down, circuit open, rate-limited) it waits in the
        outbox and the receipt says ``queued``; ``queue=False`` raises the provider's error
        instead (docs/deployment.md, "The outbox").

        Raises:
            OptedOut: ``to`` opted out (nothing was sent); ``exempt=True`` sends anyway.
        """
        return self.router.send(to, message, **options)

    async def send_async(
        self, to: str, message: Message | str, **options: Unpack[SendOptions]
    ) -> SendReceipt:
        """Async face of :meth:`send`."""
        return await self.router.send_async(to, message, **options)

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
        self.background.shutdown()
        if self.outcomes is not None:
            self.outcomes.close()
        for provider in self.providers.values():
            try:
                provider.close()
            except Exception:
                logger.exception("closing provider %s failed", provider)
        self.background.loop_thread.stop()
        self.store.close()

    def __enter__(self) -> Bot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bot(policy={self.settings.whatsapp_provider!r}, providers={sorted(self.providers)})"


def _readers(settings: Settings, providers: Mapping[str, Provider]) -> list[WebhookReader]:
    """Registered providers that read their own webhooks first, then the built-in readers."""
    own: list[WebhookReader] = [p for p in providers.values() if isinstance(p, WebhookReader)]
    taken = {reader.name for reader in own}
    return own + [reader for reader in webhook_readers(settings) if reader.name not in taken]


#: What a store needs for durable handling (docs/store.md, "Durable handling").
_HANDLING_METHODS = (
    "record_work",
    "claim_work",
    "claim_due",
    "finish_work",
    "get_work",
    "pending_work",
    "retry_work",
)


def _check_durable(store: Store) -> None:
    """Refuse a store that cannot record work: every event with work is recorded before the ack,
    so a store of your own must implement the durable-handling methods."""
    missing = [name for name in _HANDLING_METHODS if not callable(getattr(store, name, None))]
    if missing:
        raise ConfigError(
            f"{type(store).__name__} has no {', '.join(missing)}: a Bot's store must record work "
            "so that no event is lost with a process (docs/store.md, 'Durable handling'). Implement "
            "them (eki_whatsapp.testing.store_contract.HandlingContract checks them), or use a "
            "built-in store (WHATSAPP_STORE_URL: sqlite:///..., postgresql://...)"
        )
