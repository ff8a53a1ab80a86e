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

import asyncio
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from ..store.base import UsageRecord
from .locale import TURN_LOCALE, base_language, detect_locale, fallback_text
from .memory import TokenCounter, estimate_tokens, fit, sanitize, scrub, shorten, trim
from .model import ChatModel, Message, ModelError, ModelResponse, ModelUsage, ToolCall, ToolChoice
from .toolpool import ToolPool, ToolStuck
from .tools import Tool, ToolArgumentsError, ToolContext, ToolError, as_tools, render_result
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


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call of a turn and how it went.

    ``error`` is ``None`` on success, else ``unknown_tool``, ``invalid_arguments``,
    ``tool_error`` (a :class:`ToolError`), ``failed`` (another exception), ``timeout`` or
    ``repeated`` (loop detection: not run again).
    """

    name: str
    arguments: str
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class AgentReply:
    """The outcome of one turn.

    Attributes:
        text: the answer as the model wrote it (Markdown); the fallback message when
            ``fallback`` is set. Sent to WhatsApp through :func:`eki_whatsapp.formatting.to_whatsapp`.
        outbound: messages tools attached (buttons, a list, a video...), sent after ``text``.
        tool_calls: every tool call of the turn, in order.
        usage: tokens of every model call of the turn added up; ``cost`` when a price is known.
        rounds: number of model calls.
        fallback: why the user got a fallback message (``refused``, ``content_filter``,
            ``rate_limited``, ``unavailable``, ``timeout``, ``deadline``, ``auth``,
            ``context_length``, ``bad_request``, ``empty``, ``other``), else ``None``.
        truncated: the model was cut off at its output limit; ``text`` ends with a note saying so.
        offline: the answer came from the offline model (no LLM).
        merged: this message arrived while the user's previous one was being answered and was
            answered together with it (in the reply of the first message of the batch).
    """

    text: str
    user_id: str
    turn_id: str
    model: str
    locale: str
    outbound: tuple[OutboundMessage, ...] = ()
    tool_calls: tuple[ToolCallRecord, ...] = ()
    usage: ModelUsage = field(default_factory=ModelUsage)
    cost: Decimal | None = None
    rounds: int = 0
    fallback: str | None = None
    offline: bool = False
    merged: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    truncated: bool = False


@dataclass(eq=False)  # compared by identity: two users may send the same text
class _Pending:
    text: str
    reply: AgentReply | None = None


@dataclass
class _UserQueue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[_Pending] = field(default_factory=list)
    refs: int = 0


class _LoopState:
    """Locks and the call cap, per event loop (asyncio primitives belong to one loop)."""

    def __init__(self, max_calls: int) -> None:
        self.users: dict[str, _UserQueue] = {}
        self.calls = asyncio.Semaphore(max_calls)


@dataclass
class _Turn:
    ctx: ToolContext
    history: list[Message]
    system: str
    items: list[Message] = field(default_factory=list)
    records: list[ToolCallRecord] = field(default_factory=list)
    usage: ModelUsage = field(default_factory=ModelUsage)
    cost: Decimal | None = None
    rounds: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    repeats: int = 0
    force_final: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    deadline: float = 0.0
    #: a request was over the context window: send no history and short tool results
    compacted: bool = False
    truncated: bool = False
    history_tokens: int = 0
    counter: TokenCounter = estimate_tokens
    sizes: dict[int, int] = field(default_factory=dict)

    def count(self, message: Message) -> int:
        """Tokens of a message, counted once per turn (the history is measured several times)."""
        key = id(message)
        size = self.sizes.get(key)
        if size is None:
            size = self.sizes[key] = self.counter(message)
        return size


class _Refused(Exception):
    def __init__(self, reason: str, words: str | None) -> None:
        self.reason = reason  # "refused" | "content_filter"
        self.words = words
        super().__init__(reason)


#: Tool results kept when a request had to be cut to fit the model's context window.
_COMPACT_RESULT_CHARS = 2000


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
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._own_store: Store | None = None
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
        state = self._state()
        queue = state.users.get(user_id)
        if queue is None:
            queue = state.users[user_id] = _UserQueue()
        entry = _Pending(text)
        queue.pending.append(entry)
        queue.refs += 1
        try:
            async with queue.lock:
                if entry.reply is not None:
                    return replace(entry.reply, merged=True)
                merge = self.merge_pending and entry in queue.pending
                batch = list(queue.pending) if merge else [entry]
                queue.pending = [p for p in queue.pending if p not in batch]
                reply = await self._turn(
                    user_id,
                    "\n".join(p.text for p in batch),
                    provider=provider,
                    profile_name=profile_name,
                    locale=locale,
                    message=message,
                    store=store,
                )
                for p in batch:
                    p.reply = reply
                return reply
        finally:
            queue.refs -= 1
            if queue.refs == 0 and state.users.get(user_id) is queue:
                del state.users[user_id]

    def respond_sync(self, user_id: str, text: str, **kwargs: Any) -> AgentReply:
        """:meth:`respond` for sync code (runs on one background event loop)."""
        return _background_loop().run(self.respond(user_id, text, **kwargs))  # type: ignore[no-any-return]

    async def _turn(
        self,
        user_id: str,
        text: str,
        *,
        provider: str | None,
        profile_name: str | None,
        locale: str | None,
        message: InboundMessage | None,
        store: Store | None,
    ) -> AgentReply:
        from ..formatting import to_whatsapp

        started = time.perf_counter()
        store = store or self._store()
        turn_id = uuid.uuid4().hex[:16]
        text = scrub(text)
        lang = locale or detect_locale(user_id, text, self.default_locale)
        ctx = ToolContext(
            user_id=user_id,
            provider=provider,
            profile_name=profile_name,
            locale=lang,
            message=message,
            store=store,
            turn_id=turn_id,
        )
        turn = _Turn(ctx=ctx, history=[], system=self._system_prompt(ctx), counter=self.token_counter)
        turn.history = self._load(store, user_id, turn.count)
        turn.history_tokens = sum(turn.count(m) for m in turn.history)
        turn.items.append({"role": "user", "content": text})
        turn.deadline = time.monotonic() + self.turn_timeout
        fallback: str | None = None
        answer = ""
        refusal: str | None = None
        locale_token = TURN_LOCALE.set(lang)  # the offline model phrases in the turn's language
        try:
            answer = await _within(self.turn_timeout, self._loop(turn))
        except asyncio.TimeoutError:
            fallback = "deadline"
            logger.warning(
                "agent %r turn %s for %s exceeded %ss", self.name, turn_id, _mask(user_id), self.turn_timeout
            )
        except _Refused as exc:
            fallback, refusal = exc.reason, exc.words
            logger.warning(
                "agent %r turn %s: the model %s for %s; the user is told politely",
                self.name,
                turn_id,
                "refused to answer" if exc.reason == "refused" else "was stopped by the content filter",
                _mask(user_id),
            )
        except ModelError as exc:
            fallback = exc.kind
            log = logger.warning if exc.retryable else logger.error
            log("agent %r model call failed for %s: %s", self.name, _mask(user_id), exc)
        except Exception:
            fallback = "other"
            logger.exception("agent %r turn %s failed", self.name, turn_id)
        finally:
            TURN_LOCALE.reset(locale_token)
        if fallback is None and not ctx.outbound and not to_whatsapp(answer).strip():
            fallback = "empty"  # nothing, or nothing left once formatted ("---")
        if fallback is None and turn.truncated:
            answer = f"{answer}\n\n_{fallback_text('cut', lang, self.fallback_messages)}_"
        self._remember(store, user_id, turn, fallback)
        reply = AgentReply(
            text=fallback_text(fallback, lang, self.fallback_messages) if fallback else answer,
            user_id=user_id,
            turn_id=turn_id,
            model=self.model.name,
            locale=lang,
            outbound=tuple(ctx.outbound),
            tool_calls=tuple(turn.records),
            usage=turn.usage,
            cost=turn.cost,
            rounds=turn.rounds,
            fallback=fallback,
            offline=self.model.offline,
            metadata={**turn.metadata, **({"refusal": refusal} if refusal else {})},
            truncated=turn.truncated and fallback is None,
        )
        if logger.isEnabledFor(logging.INFO):
            self._log_turn(turn, reply, provider, started)
        return reply

    def _log_turn(self, turn: _Turn, reply: AgentReply, provider: str | None, started: float) -> None:
        logger.info(
            "agent %r turn %s user=%s provider=%s rounds=%d tools=[%s] tokens=%d/%d cached=%d cost=%s "
            "fallback=%s offline=%s %.0fms",
            self.name,
            reply.turn_id,
            _mask(reply.user_id),
            provider,
            turn.rounds,
            ",".join(r.name + ("" if r.ok else f"!{r.error}") for r in turn.records),
            turn.usage.prompt_tokens,
            turn.usage.completion_tokens,
            turn.usage.cached_tokens,
            turn.cost,
            reply.fallback,
            self.model.offline,
            (time.perf_counter() - started) * 1000,
        )

    async def _loop(self, turn: _Turn) -> str:
        for round_no in range(self.max_tool_rounds + 1):
            final_round = turn.force_final or round_no >= self.max_tool_rounds
            response = await self._call_model(turn, "none" if final_round else "auto")
            if response.stop in ("refusal", "content_filter"):
                raise _Refused(
                    "refused" if response.stop == "refusal" else "content_filter", response.refusal
                )
            # Calls of an answer cut at the output limit may have cut arguments: not run.
            if response.tool_calls and not final_round and response.stop != "length":
                calls = _unique_ids(response.tool_calls, turn)
                turn.items.append(ModelResponse(scrub(response.content or "") or None, calls).as_message())
                if len(calls) == 1:
                    results = [await self._run_tool(calls[0], turn)]
                else:
                    results = await asyncio.gather(*(self._run_tool(call, turn) for call in calls))
                for call, content in zip(calls, results, strict=True):
                    turn.items.append({"role": "tool", "tool_call_id": call.id, "content": content})
                continue
            answer = scrub(response.content or "").strip()
            if response.stop == "length":
                turn.truncated = True
                logger.warning(
                    "agent %r turn %s: the answer was cut at the model's output limit (%d characters kept)",
                    self.name,
                    turn.ctx.turn_id,
                    len(answer),
                )
            if answer:
                turn.items.append({"role": "assistant", "content": answer})
            return answer
        return ""  # pragma: no cover - the last round always returns

    async def _call_model(self, turn: _Turn, choice: ToolChoice) -> ModelResponse:
        attempt = 0
        while True:
            messages = self._request(turn)
            try:
                async with self._state().calls:
                    response = await self.model.complete(
                        messages,
                        self._specs,
                        tool_choice=choice,
                        parallel_tool_calls=self.parallel_tool_calls,
                    )
                break
            except ModelError as exc:
                if exc.kind == "context_length" and not turn.compacted:
                    turn.compacted = True
                    logger.warning(
                        "agent %r turn %s: over the model's context window; retrying without history "
                        "and with tool results cut to %d characters (context_tokens may be too high "
                        "for this model)",
                        self.name,
                        turn.ctx.turn_id,
                        _COMPACT_RESULT_CHARS,
                    )
                    continue
                wait = self._retry_wait(exc, attempt, turn)
                if wait is None:
                    raise
                attempt += 1
                await asyncio.sleep(wait)  # outside the concurrency slot
        turn.rounds += 1
        turn.usage = turn.usage + response.usage
        model_id = response.model or self.model.name
        cost = self.prices.cost(model_id, response.usage) if self.prices else None
        if cost is not None:
            turn.cost = (turn.cost or Decimal(0)) + cost
        if response.metadata:
            turn.metadata.update({k: v for k, v in response.metadata.items() if k != "id"})
        store = turn.ctx.store
        if store is not None:
            try:
                store.record_usage(
                    UsageRecord(
                        user=turn.ctx.user_id,
                        model=model_id,
                        prompt_tokens=response.usage.prompt_tokens,
                        completion_tokens=response.usage.completion_tokens,
                        cached_tokens=response.usage.cached_tokens,
                        cost=cost,
                        turn_id=turn.ctx.turn_id,
                        provider=turn.ctx.provider,
                    )
                )
            except Exception:
                logger.exception("agent %r could not record usage", self.name)
        return response

    def _retry_wait(self, exc: ModelError, attempt: int, turn: _Turn) -> float | None:
        """Seconds to wait before trying the model again, or ``None`` to give up now."""
        if not exc.retryable or attempt >= self.model_retries:
            return None
        wait = exc.retry_after if exc.retry_after is not None else min(8.0, 0.5 * 2**attempt)
        left = turn.deadline - time.monotonic()
        if wait >= left - 1.0:  # the call itself needs time too
            logger.warning(
                "agent %r turn %s: the model asks to wait %.1fs (%s), beyond the turn's %.1fs left: "
                "answering now",
                self.name,
                turn.ctx.turn_id,
                wait,
                exc.kind,
                max(0.0, left),
            )
            return None
        return max(0.0, wait)

    def _request(self, turn: _Turn) -> list[Message]:
        """The messages of the next call, within ``context_tokens``: the oldest history goes first."""
        system: Message = {"role": "system", "content": turn.system}
        items = turn.items
        if turn.compacted:
            items = [_short_result(m, _COMPACT_RESULT_CHARS) for m in items]
            return [system, *items]
        count = turn.count
        used = count(system) + sum(count(m) for m in items)
        room = self.context_tokens - used
        if turn.history_tokens <= room:
            return [system, *turn.history, *items]
        if room > 0:
            return [system, *fit(turn.history, room, count=count), *items]
        # This turn alone is over the budget (many tool rounds): shorten its tool results.
        limit = max(_COMPACT_RESULT_CHARS, (self.context_tokens * 4) // max(1, len(items)))
        return [system, *(_short_result(m, limit) for m in items)]

    async def _run_tool(self, call: ToolCall, turn: _Turn) -> str:
        started = time.perf_counter()
        error: str | None = None
        t = self.tools.get(call.name)
        try:
            if t is None:
                error = "unknown_tool"
                return (
                    f"Error: there is no tool named {call.name!r}. "
                    f"Available tools: {', '.join(self.tools) or 'none'}."
                )
            try:
                kwargs = t.validate(call.arguments)
            except ToolArgumentsError as exc:
                error = "invalid_arguments"
                return f"Error: invalid arguments for {t.name}: {exc}. Fix them and call it again."
            key = t.name + json.dumps(kwargs, sort_keys=True, default=str)
            seen = turn.seen.get(key, 0)
            turn.seen[key] = seen + 1
            if seen:
                error = "repeated"
                turn.repeats += 1
                if turn.repeats >= 2:
                    turn.force_final = True
                return (
                    f"Error: {t.name} was already called with these same arguments in this turn; its "
                    "result is above. Do not call it again: answer the user with what you have."
                )
            timeout = t.timeout or self.tool_timeout
            try:
                if t.is_async:
                    result = await _within(timeout, t.invoke(kwargs, turn.ctx))
                else:
                    result = await self._tool_pool().run(t, kwargs, turn.ctx, timeout)
            except asyncio.TimeoutError:
                error = "timeout"
                if t.is_async:
                    logger.warning("tool %s timed out after %ss", t.name, timeout)
                return (
                    f"Error: {t.name} did not finish within {timeout:g} seconds. Tell the user to try later."
                )
            except ToolStuck as exc:
                error = "timeout"
                logger.warning("tool %s not started: %s", t.name, exc)
                return (
                    f"Error: {t.name} is not answering right now (earlier calls are still running). "
                    "Tell the user it cannot be done at the moment."
                )
            except ToolError as exc:
                error = "tool_error"
                return f"Error from {t.name}: {exc}"
            except Exception as exc:
                error = "failed"
                logger.exception("tool %s failed (turn %s)", t.name, turn.ctx.turn_id)
                return (
                    f"Error: {t.name} failed ({type(exc).__name__}). Tell the user it could not be done "
                    "right now; do not retry with the same arguments."
                )
            return shorten(scrub(render_result(result)), self.max_tool_result_chars)
        finally:
            turn.records.append(
                ToolCallRecord(call.name, call.arguments, error, time.perf_counter() - started)
            )

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

    def usage(
        self, user_id: str | None = None, *, store: Store | None = None, since: datetime | None = None
    ) -> UsageSummary:
        """Token and cost totals from the Store (one user, or everyone)."""
        return summarize((store or self._store()).usage(user=user_id, since=since))

    def _load(self, store: Store, user_id: str, count: TokenCounter) -> list[Message]:
        """The user's history within the memory budget (stored histories may be far larger)."""
        try:
            stored = store.load_memory(self.memory_key(user_id))
        except Exception:
            logger.exception("agent %r could not load the memory of %s", self.name, _mask(user_id))
            return []
        # Repair only what the turn budget keeps (a few whole turns more, as repair may drop some).
        recent = trim(stored, max_turns=self.memory_turns + 5)
        return trim(sanitize(recent), max_turns=self.memory_turns, max_tokens=self.memory_tokens, count=count)

    def _remember(self, store: Store, user_id: str, turn: _Turn, fallback: str | None) -> None:
        if fallback is None:
            items = turn.items
        elif fallback in ("refused", "content_filter"):
            items = []  # sent again, a refused message would be refused again
        elif fallback == "context_length" or turn.compacted:
            items = turn.items[:1]  # the tool rounds are what did not fit: keep the question only
        else:
            items = sanitize(turn.items)
        combined = [*turn.history, *items]
        if turn.history_tokens + sum(turn.count(m) for m in items) <= self.memory_tokens:
            kept = trim(combined, max_turns=self.memory_turns)  # within the token budget already
        else:
            kept = trim(
                combined, max_turns=self.memory_turns, max_tokens=self.memory_tokens, count=turn.count
            )
        try:
            store.save_memory(self.memory_key(user_id), kept)
        except Exception:
            logger.exception("agent %r could not save the memory of %s", self.name, _mask(user_id))

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

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState(self.max_concurrent_calls)
        return state

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


T = TypeVar("T")


async def _within(seconds: float, awaitable: Coroutine[Any, Any, T]) -> T:
    """``await`` with a deadline (``asyncio.TimeoutError`` after ``seconds``).

    ``asyncio.timeout`` (3.11+) does not wrap the coroutine in a task as ``wait_for`` does.
    """
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10
        return await asyncio.wait_for(awaitable, seconds)
    async with timeout(seconds):
        return await awaitable


def _unique_ids(calls: Sequence[ToolCall], turn: _Turn) -> tuple[ToolCall, ...]:
    """Some OpenAI-compatible servers omit or repeat call ids; results must match calls 1:1."""
    used: set[str] = set()
    out = []
    for index, call in enumerate(calls):
        cid = call.id
        if not cid or cid in used:
            cid = f"call_{turn.rounds}_{index}"
        used.add(cid)
        out.append(call if cid == call.id else ToolCall(cid, call.name, call.arguments))
    return tuple(out)


def _short_result(message: Message, limit: int) -> Message:
    content = message.get("content")
    if message.get("role") == "tool" and isinstance(content, str) and len(content) > limit:
        return {**message, "content": shorten(content, limit)}
    return message


def _message_text(message: InboundMessage) -> str | None:
    if message.text and message.text.strip():
        return message.text.strip()
    if message.location is not None:
        loc = message.location
        label = ", ".join(x for x in (loc.name, loc.address) if x)
        return f"[location {loc.latitude},{loc.longitude}{' ' + label if label else ''}]"
    return None


def _mask(user_id: str) -> str:
    """Enough of a user id to follow a log, not enough to expose a phone number."""
    return user_id if len(user_id) <= 4 else "…" + user_id[-4:]


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
