"""The :class:`Agent`: an OpenAI function-calling assistant that answers WhatsApp users.

Register it as a message handler and it answers on the channel each user wrote from::

    from eki_whatsapp import Bot
    from eki_whatsapp.agent import Agent, tool

    @tool
    def opening_hours(day: str) -> str:
        \"\"\"Opening hours of the school on a day of the week.\"\"\"
        return "9:00-18:00"

    agent = Agent("You are the assistant of a language school.", [opening_hours])
    bot = Bot()
    bot.on_message(agent)

Or run a turn without WhatsApp: ``reply = await agent.respond("user-1", "hello")``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .history import History
from .locale import base_language
from .memory import TokenCounter, estimate_tokens
from .model import ChatModel, Message
from .queues import Queues
from .reply import AgentReply, ToolCallRecord
from .toolpool import ToolPool
from .tools import Tool, ToolContext, as_tools
from .turn import TurnRunner
from .turn import mask as _mask
from .usage import PriceTable, UsageSummary, summarize

if TYPE_CHECKING:
    from ..bot import Context
    from ..events import InboundMessage
    from ..messages import Message as OutboundMessage
    from ..settings import Settings
    from ..store import Store

logger = logging.getLogger("eki_whatsapp.agent")

__all__ = ["Agent", "AgentReply", "ToolCallRecord"]

_WHATSAPP_HINT = (
    "You are chatting with the user on WhatsApp. Keep answers short and clear, in the user's "
    "language. Use WhatsApp formatting sparingly (*bold*, _italic_, lists); no tables or headings."
)


class Agent:
    """An assistant that calls your tools, remembers each user, and answers on WhatsApp.

    Args:
        instructions: the system prompt.
        tools: :func:`~eki_whatsapp.agent.tool` objects (plain typed functions are wrapped).
            Duplicate names raise :class:`~eki_whatsapp.agent.ToolDefinitionError` here.
        model: a :class:`ChatModel`, or a model id for OpenAI. Default: ``OPENAI_MODEL`` with
            ``OPENAI_API_KEY`` when set, else the :class:`OfflineChatModel` (says so in the log).
        client: an ``openai.OpenAI``/``openai.AsyncOpenAI`` to use (tests, proxies, Azure...).
        settings: where ``OPENAI_*`` come from (default: the environment).
        api: ``"chat"`` (Chat Completions, default) or ``"responses"``.
        max_tool_rounds: model calls that may request tools in one turn; then it must answer.
        turn_timeout: seconds for a whole turn before the user gets a fallback message.
        tool_timeout: seconds per tool call (a tool's own ``timeout`` wins); then the model is
            told the tool did not answer.
        tool_threads: threads for sync tools, a pool of their own (default: the
            ``AGENT_TOOL_THREADS`` setting, 8). A hung tool holds one until it returns; the
            count of such stuck calls is logged and in :attr:`stuck_tool_calls`.
        store: where memory and usage go (default: the bot's store, or an in-memory one).
        name: distinguishes the memory of several agents in one store.
        memory_turns / memory_tokens: the history budget (whole turns, estimated tokens), applied
            when the history is loaded and when it is saved.
        context_tokens: the most estimated tokens one request may carry (system prompt, history,
            this turn); the oldest history goes first. A ``context_length_exceeded`` answer is
            retried once with no history and short tool results.
        max_tool_result_chars: a longer tool result is cut, with a note telling the model so.
        max_concurrent_calls: cap on model calls in flight, all users together. Under a bot
            (not ``inline``) turns run on the bot's event loop and hold no handler worker, so
            this cap, not ``WHATSAPP_HANDLER_WORKERS``, is what runs at once.
        model_retries: retries of a model call after a 429/5xx/timeout, made outside the
            concurrency slot and only when the wait (``Retry-After``) fits in the turn;
            otherwise the user is told at once that the bot is busy.
        merge_pending: messages a user sends while their previous one is being answered are
            answered together in one turn (``False``: one turn each, in order).
        strict_tools: send strict JSON schemas (OpenAI structured outputs) where possible;
            ``False`` for servers that do not support ``strict``.
        interactive_tools: add the built-in tools that send reply buttons and list menus.
        prices: a :class:`PriceTable` for estimated cost (default: none recorded).
        locale: language of fallback messages when it cannot be told from the user's words or
            number (default: the bot's ``WHATSAPP_FALLBACK_TEMPLATE_LANGUAGE``, else English).
        fallback_messages: ``{"es": {"busy": ..., "slow": ..., "error": ...}, ...}``.
        typing_indicator: mark the message read and show "typing..." (Meta) before answering.
        token_counter: counts a message's tokens for ``memory_tokens`` (default: ~4 chars/token).
    """

    def __init__(
        self,
        instructions: str,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        *,
        model: ChatModel | str | None = None,
        client: Any = None,
        settings: Settings | None = None,
        api: str = "chat",
        max_tool_rounds: int = 6,
        turn_timeout: float = 90.0,
        tool_timeout: float = 20.0,
        store: Store | None = None,
        name: str = "agent",
        memory_turns: int = 20,
        memory_tokens: int = 8000,
        max_concurrent_calls: int = 16,
        model_retries: int = 1,
        tool_threads: int | None = None,
        context_tokens: int = 60_000,
        max_tool_result_chars: int = 20_000,
        merge_pending: bool = True,
        strict_tools: bool = True,
        parallel_tool_calls: bool = True,
        interactive_tools: bool = False,
        prices: PriceTable | None = None,
        locale: str | None = None,
        fallback_messages: Mapping[str, Mapping[str, str]] | None = None,
        typing_indicator: bool = False,
        whatsapp_hint: bool = True,
        token_counter: TokenCounter = estimate_tokens,
    ) -> None:
        if max_tool_rounds < 0:
            raise ValueError("max_tool_rounds must be >= 0")
        if turn_timeout <= 0 or tool_timeout <= 0:
            raise ValueError("turn_timeout and tool_timeout must be > 0 seconds")
        if max_concurrent_calls < 1:
            raise ValueError("max_concurrent_calls must be >= 1")
        if tool_threads is not None and tool_threads < 1:
            raise ValueError("tool_threads must be >= 1")
        if context_tokens < 1000 or max_tool_result_chars < 100:
            raise ValueError("context_tokens must be >= 1000 and max_tool_result_chars >= 100")
        self.instructions = instructions
        all_tools: list[Tool | Callable[..., Any]] = list(tools)
        if interactive_tools:
            from .builtin import INTERACTIVE_TOOLS

            all_tools.extend(INTERACTIVE_TOOLS)
        self.tools: dict[str, Tool] = as_tools(all_tools)
        self.model: ChatModel = _resolve_model(model, client=client, settings=settings, api=api)
        self.max_tool_rounds = max_tool_rounds
        self.turn_timeout = turn_timeout
        self.tool_timeout = tool_timeout
        self.store = store
        self.name = name
        self.memory_turns = memory_turns
        self.memory_tokens = memory_tokens
        self.max_concurrent_calls = max_concurrent_calls
        self.model_retries = max(0, model_retries)
        self.tool_threads = tool_threads
        self.context_tokens = context_tokens
        self.max_tool_result_chars = max_tool_result_chars
        self.settings = settings
        self._bot_settings: Settings | None = None
        self._pool: ToolPool | None = None
        self._pool_lock = threading.Lock()
        self.merge_pending = merge_pending
        self.strict_tools = strict_tools
        self.parallel_tool_calls = parallel_tool_calls
        self.prices = prices
        self.locale = locale
        self.fallback_messages = (
            {k: dict(v) for k, v in fallback_messages.items()} if fallback_messages else None
        )
        self.typing_indicator = typing_indicator
        self.whatsapp_hint = whatsapp_hint
        self.token_counter = token_counter
        self._specs = [t.spec(strict=strict_tools) for t in self.tools.values()]
        self._queues = Queues(self)
        self._own_store: Store | None = None
        self._runner = TurnRunner(self)
        self._history = History(self)
        if self.model.offline:
            logger.warning(
                "agent %r uses the offline model (no OPENAI_API_KEY): keyword-matched tools and "
                "template answers, no language model",
                name,
            )

    # --- WhatsApp handler ------------------------------------------------------------------------
    async def __call__(self, message: InboundMessage, ctx: Context) -> AgentReply | None:
        """Answer an inbound message: ``bot.on_message(agent)``.

        Messages without text (reactions, stickers, ...) are ignored. The answer goes through
        :func:`~eki_whatsapp.formatting.to_whatsapp` and ``ctx.reply_async`` (the inbound channel;
        the provider splits long text), followed by any messages tools attached.

        Under a bot that runs handlers after the webhook answer, the turn continues on the bot's
        event loop and this returns ``None`` at once: the handler worker is free for other
        users while the model thinks (``bot.drain()`` and ``bot.close()`` wait for the turn).
        Elsewhere (``inline``, tests) it returns the :class:`AgentReply` once it is sent.
        """
        text = _message_text(message)
        if text is None:
            logger.debug("agent %r ignores a %s message", self.name, message.type)
            return None
        bot = getattr(ctx, "bot", None)
        if bot is not None:
            self._bot_settings = getattr(bot, "settings", None)
        run_later = getattr(bot, "run_later", None)
        if bot is not None and not getattr(bot, "inline", True) and callable(run_later):
            run_later(self._answer(message, text, ctx))
            return None
        return await self._answer(message, text, ctx)

    async def _answer(self, message: InboundMessage, text: str, ctx: Context) -> AgentReply:
        if self.typing_indicator:
            try:
                await ctx.mark_as_read_async(typing=True)
            except Exception:
                logger.warning("could not show the typing indicator", exc_info=True)
        reply = await self.respond(
            message.sender,
            text,
            provider=message.provider,
            profile_name=message.profile_name,
            message=message,
            store=self.store or ctx.store,
        )
        if not reply.merged:
            await self.deliver(reply, ctx)
        return reply

    async def deliver(self, reply: AgentReply, ctx: Context) -> None:
        """Send a reply on the inbound channel: the formatted text, then attachments."""
        from ..formatting import to_whatsapp

        outgoing: list[OutboundMessage | str] = []
        body = to_whatsapp(reply.text).strip() if reply.text else ""
        if body:
            outgoing.append(body)
        outgoing.extend(reply.outbound)
        for item in outgoing:
            try:
                await ctx.reply_async(item)
            except Exception:
                logger.exception(
                    "agent %r could not send its reply (%s) to %s",
                    self.name,
                    getattr(item, "kind", "text"),
                    _mask(reply.user_id),
                )
                return

    # --- one turn ------------------------------------------------------------------------------
    async def respond(
        self,
        user_id: str,
        text: str,
        *,
        provider: str | None = None,
        profile_name: str | None = None,
        locale: str | None = None,
        message: InboundMessage | None = None,
        store: Store | None = None,
    ) -> AgentReply:
        """Run one turn for ``user_id`` and return the answer (nothing is sent).

        Never raises for model or tool failures: the reply then carries a fallback message and
        ``fallback`` says why. One turn per user runs at a time; see ``merge_pending``.
        """
        return await self._queues.one_at_a_time(
            user_id,
            text,
            lambda joined: self._turn(
                user_id,
                joined,
                provider=provider,
                profile_name=profile_name,
                locale=locale,
                message=message,
                store=store,
            ),
        )

    def respond_sync(self, user_id: str, text: str, **kwargs: Any) -> AgentReply:
        """:meth:`respond` for sync code (runs on one background event loop)."""
        return _background_loop().run(self.respond(user_id, text, **kwargs))  # type: ignore[no-any-return]

    async def _turn(self, user_id: str, text: str, **context: Any) -> AgentReply:
        return await self._runner.run(user_id, text, **context)

    # --- memory, usage ---------------------------------------------------------------------------
    def memory_key(self, user_id: str) -> str:
        """The Store memory key of a user's history with this agent."""
        return f"agent:{self.name}:{user_id}"

    def history(self, user_id: str, *, store: Store | None = None) -> list[Message]:
        """The stored history of a user (Chat Completions messages)."""
        return (store or self._store()).load_memory(self.memory_key(user_id))

    def forget(self, user_id: str, *, store: Store | None = None) -> None:
        """Erase a user's history with this agent."""
        (store or self._store()).save_memory(self.memory_key(user_id), [])
        self._history.forget_recent(self.memory_key(user_id))

    def usage(
        self, user_id: str | None = None, *, store: Store | None = None, since: datetime | None = None
    ) -> UsageSummary:
        """Token and cost totals from the Store (one user, or everyone)."""
        return summarize((store or self._store()).usage(user=user_id, since=since))

    @property
    def default_locale(self) -> str:
        """The language when the user's cannot be told: ``locale``, else the bot's configured
        language (``WHATSAPP_LANGUAGE``, else ``WHATSAPP_FALLBACK_TEMPLATE_LANGUAGE``), else
        ``"en"``."""
        if self.locale:
            return self.locale
        settings = self.settings or self._bot_settings
        configured = getattr(settings, "whatsapp_language", None) or getattr(
            settings, "whatsapp_fallback_template_language", None
        )
        return base_language(configured) or "en"

    @property
    def stuck_tool_calls(self) -> int:
        """Sync tool calls past their timeout whose thread is still running."""
        return self._pool.stuck if self._pool is not None else 0

    def _tool_pool(self) -> ToolPool:
        with self._pool_lock:
            if self._pool is None:
                threads = self.tool_threads
                if threads is None:
                    settings = self.settings or self._bot_settings
                    threads = int(getattr(settings, "agent_tool_threads", 0) or 8)
                self._pool = ToolPool(threads, name=self.name)
            return self._pool

    def _system_prompt(self, ctx: ToolContext) -> str:
        parts = [self.instructions.strip()]
        if self.whatsapp_hint:
            parts.append(_WHATSAPP_HINT)
        if ctx.profile_name:
            parts.append(f"The user's WhatsApp name is {ctx.profile_name!r}.")
        return "\n\n".join(p for p in parts if p)

    def _store(self) -> Store:
        if self.store is not None:
            return self.store
        if self._own_store is None:
            from ..store.memory import MemoryStore

            self._own_store = MemoryStore()
        return self._own_store

    async def aclose(self) -> None:
        """Close the model's network client (when the agent built it) and the tool threads."""
        if self._pool is not None:
            self._pool.shutdown()
        await self.model.aclose()

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, model={self.model.name!r}, tools={list(self.tools)})"


# --- helpers ---------------------------------------------------------------------------------------
def _resolve_model(
    model: ChatModel | str | None, *, client: Any, settings: Settings | None, api: str
) -> ChatModel:
    if model is not None and not isinstance(model, str):
        return model
    if client is not None:
        from .openai_model import OpenAIChatModel

        name = model or (settings.openai_model if settings else "gpt-4.1-mini")
        return OpenAIChatModel(name, client=client, api=api)  # type: ignore[arg-type]
    if settings is None:
        from ..settings import Settings

        settings = Settings()
    if settings.openai_api_key is not None or settings.openai_base_url:
        from .openai_model import OpenAIChatModel

        kwargs: dict[str, Any] = {"api": api}
        if model:
            kwargs["model"] = model
        return OpenAIChatModel.from_settings(settings, **kwargs)
    from .offline import OfflineChatModel

    return OfflineChatModel()


def _message_text(message: InboundMessage) -> str | None:
    if message.text and message.text.strip():
        return message.text.strip()
    if message.location is not None:
        loc = message.location
        label = ", ".join(x for x in (loc.name, loc.address) if x)
        return f"[location {loc.latitude},{loc.longitude}{' ' + label if label else ''}]"
    return None


class _Background:
    def __init__(self) -> None:
        from ..background import LoopThread

        self.thread = LoopThread()

    def run(self, coro: Any) -> Any:
        return self.thread.run(coro)


_BACKGROUND: _Background | None = None
_BACKGROUND_LOCK = threading.Lock()


def _background_loop() -> _Background:
    global _BACKGROUND
    with _BACKGROUND_LOCK:
        if _BACKGROUND is None:
            _BACKGROUND = _Background()
        return _BACKGROUND
