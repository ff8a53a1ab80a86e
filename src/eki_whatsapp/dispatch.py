"""Handler dispatch: the registered handlers, and how an event reaches them.

Before the handlers, the bot's own reactions run (the router's late-failure handling of a
status, template states from template webhooks), then opt-out keywords and handoff decide
whether the bot answers at all. Handlers may be sync or async, take ``(event, ctx)`` or
``(event)``; one that fails is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import handoff, optout
from .context import Context
from .events import ChangeEvent, Event, InboundMessage, StatusUpdate
from .handling import idempotency_base
from .optout import OptOutState, user_key
from .store.base import read_values

if TYPE_CHECKING:
    from .bot import Bot

logger = logging.getLogger("eki_whatsapp")

Handler = Callable[..., Any]

__all__ = ["Handler", "Handlers"]


class Registered:
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


class Handlers:
    """The handlers registered on ``bot`` (``bot.on_message`` & co.) and their dispatch."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.messages: list[Registered] = []
        self.statuses: list[Registered] = []
        self.changes: list[Registered] = []
        #: Opt-out and handoff changes made in this process (:meth:`states_changed`): states
        #: read before one (a START whose question came with it) are not used after it.
        self.state_changes = 0

    def register(self, where: list[Registered], func: Any, accept: Callable[[Any], bool]) -> Any:
        """Add ``func`` to ``where`` (``func=None``: a decorator that does it)."""

        def decorator(f: Any) -> Any:
            where.append(Registered(f, accept))
            return f

        return decorator(func) if func is not None else decorator

    def needs_handling(self, event: Event) -> bool:
        """Whether anything reacts to this event (see :meth:`Bot.needs_handling`)."""
        if isinstance(event, InboundMessage):
            if self.messages:
                return True
            optouts = self.bot.optouts
            return optouts.enabled and optouts.classify(event) is not None
        if isinstance(event, StatusUpdate):
            return True  # the router watches statuses for late failures
        return bool(self.changes) or about_templates(event)

    def for_event(self, event: Event) -> list[Registered]:
        if isinstance(event, InboundMessage):
            handlers = self.messages
        elif isinstance(event, StatusUpdate):
            handlers = self.statuses
        else:
            handlers = self.changes
        return [h for h in handlers if h.filter is None or h.filter(event)]

    def before(self, event: Event) -> str | None:
        """Internal reactions to an event (the router's late-failure handling, template states);
        the error, if any."""
        bot = self.bot
        if isinstance(event, StatusUpdate):
            try:
                bot.router.on_status(event)
            except Exception as exc:
                logger.exception("router failed on status %s of %s", event.status, event.message_id)
                return f"router: {type(exc).__name__}: {exc}"
        elif isinstance(event, ChangeEvent) and about_templates(event):
            try:
                bot.templates.on_change(event)
            except Exception as exc:
                logger.exception("template webhook %s could not be applied", getattr(event, "field", "?"))
                return f"templates: {type(exc).__name__}: {exc}"
        return None

    def user_states(self, event: Event) -> UserStates | None:
        """The sender's opt-out and handoff states, read now in one query (``None`` for an
        event that is not a message): what :meth:`bot_answers` reads, when it is given them."""
        if not isinstance(event, InboundMessage):
            return None
        key = user_key(event.sender)
        changes = self.state_changes  # before the read: a change during it makes it old
        values = read_values(self.bot.store, key, (optout.NAMESPACE, handoff.NAMESPACE))
        return UserStates(key, values, time.monotonic(), changes)

    def states_changed(self, *_: Any) -> None:
        """Count an opt-out or handoff change (the bot calls it on each one made here)."""
        self.state_changes += 1

    def bot_answers(self, event: Event, states: UserStates | None = None) -> bool:
        """Opt-out keywords and handoff: whether the bot's handlers may answer this event.

        A keyword is answered here, once, with a confirmation; an opted-out user's other messages
        and the messages of a conversation staff took over are logged but not answered.
        ``states``: the sender's states read already (:meth:`user_states`), used while younger
        than ``STATES_FRESH`` seconds; older, they are read again.
        """
        if not isinstance(event, InboundMessage):
            return True
        bot = self.bot
        optouts = bot.optouts
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
                return not bot.handoff.is_human(event.sender)  # START from a subscriber: a message
            base = idempotency_base(event, None)
            try:
                bot.router.send(
                    event.sender,
                    optouts.confirmation(action, language),
                    inbound=event,
                    exempt=True,
                    idempotency_key=None if base is None else f"{base}#{action}",
                )
            except Exception:
                logger.exception("the %s confirmation to %s could not be sent", action, event.sender)
            return False
        if (
            states is None
            or states.changes != self.state_changes
            or time.monotonic() - states.at >= STATES_FRESH
        ):
            states = self.user_states(event)
            assert states is not None
        key, values = states.key, states.values
        if optouts.enabled and OptOutState.from_json(key, values.get(optout.NAMESPACE)) is not None:
            logger.info("message %s from opted-out %s logged, not answered", event.id, event.sender)
            return False
        return not bot.handoff.state_of(key, values.get(handoff.NAMESPACE)).human

    def run_sync(
        self,
        event: Event,
        work_id: str | None = None,
        *,
        later: Callable[[Callable[[], str | None]], None] | None = None,
        states: UserStates | None = None,
    ) -> str | None:
        """Run the reactions and handlers of an event; the first error (``None``: all went well,
        or the bot does not answer: staff took over, the user opted out).

        ``later``: where to hand reactions that only write to the store (a status's price), to
        be written with the handling's outcome (:class:`~eki_whatsapp.handling.Outcomes`);
        ``states``: the sender's states read already (:meth:`bot_answers`)."""
        if later is not None and bookkeeping_only(event):
            later(functools.partial(self.before, event))
            error = None
        else:
            error = self.before(event)
        if not self.bot_answers(event, states):
            return error
        handlers = self.for_event(event)
        ctx = Context(self.bot, event, work_id) if handlers else None
        for handler in handlers:
            assert ctx is not None
            try:
                if handler.is_async:
                    self.bot.background.run(handler.call(event, ctx))
                else:
                    handler.call(event, ctx)
            except Exception as exc:
                logger.exception("handler %s failed on %s %s", handler.name, event.kind, _event_id(event))
                error = error or f"{handler.name}: {type(exc).__name__}: {exc}"
        return error

    async def run_async(self, event: Event, work_id: str | None = None) -> str | None:
        """:meth:`run_sync` on the running loop (sync steps on the handler threads)."""
        loop = asyncio.get_running_loop()
        executor = self.bot.background.executor
        error = await loop.run_in_executor(executor, self.before, event)
        if not await loop.run_in_executor(executor, self.bot_answers, event):
            return error
        ctx = Context(self.bot, event, work_id)
        for handler in self.for_event(event):
            try:
                if handler.is_async:
                    await handler.call(event, ctx)
                else:
                    await loop.run_in_executor(executor, functools.partial(handler.call, event, ctx))
            except Exception as exc:
                logger.exception("handler %s failed on %s %s", handler.name, event.kind, _event_id(event))
                error = error or f"{handler.name}: {type(exc).__name__}: {exc}"
        return error


#: How long the states read when a message was answered stand for its handler (seconds): a
#: handler that starts later (a backlog) reads them again. Staff taking over while a handler
#: runs (a model call of seconds) is the same race at any age.
STATES_FRESH = 1.0


@dataclass(frozen=True, slots=True)
class UserStates:
    """A user's stored opt-out and handoff values (by namespace), and when they were read
    (``time.monotonic()``, and the count of this process's changes then)."""

    key: str
    values: Mapping[str, Any]
    at: float
    changes: int = 0  # Handlers.state_changes when they were read


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


def bookkeeping_only(event: Event) -> bool:
    """Whether the bot's own reactions to ``event`` only write to its store: a status that is
    not a failure (its price; a failure may fail over, a send) and echoes no key of a send
    whose answer was lost (that resolves the send)."""
    return isinstance(event, StatusUpdate) and not event.failed and event.correlation is None


def about_templates(event: Event) -> bool:
    """Whether ``event`` is a provider's template webhook (status, quality, category change)."""
    from .providers import template_change

    return isinstance(event, ChangeEvent) and template_change(event) is not None


def _event_id(event: Event) -> str:
    if isinstance(event, InboundMessage):
        return event.id
    if isinstance(event, StatusUpdate):
        return f"{event.message_id}/{event.status}"
    assert isinstance(event, ChangeEvent)
    return event.field
