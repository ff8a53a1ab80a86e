"""One turn of the :class:`~eki_whatsapp.agent.Agent`: load the user's history, call the model,
run the tools it asks for (bounded rounds, timeouts, loop detection), keep within the context
window, record usage, remember the turn and build the :class:`AgentReply`.

The :class:`Agent` holds the configuration and the public faces; :class:`TurnRunner` is the work.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..store.base import UsageRecord, batch
from .locale import TURN_LOCALE, detect_locale, fallback_text
from .memory import Conversation, TokenCounter, estimate_tokens, scrub, shorten
from .model import Message, ModelError, ModelResponse, ModelUsage, ToolCall, ToolChoice
from .reply import AgentReply, ToolCallRecord
from .tool_calls import run_tool
from .toolpool import within
from .tools import ToolContext

if TYPE_CHECKING:
    from ..events import InboundMessage
    from ..store import Store
    from .agent import Agent

logger = logging.getLogger("eki_whatsapp.agent")

__all__ = ["COMPACT_RESULT_CHARS", "Refused", "Turn", "TurnRunner", "mask"]


@dataclass
class Turn:
    """The state of one turn: its context, history, new items, usage and guards."""

    ctx: ToolContext
    history: Conversation
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
    counter: TokenCounter = estimate_tokens
    sizes: dict[int, int] = field(default_factory=dict)
    #: one per model call, written with the history when the turn ends
    usage_records: list[UsageRecord] = field(default_factory=list)

    @cached_property
    def system_message(self) -> Message:
        """The system prompt as the first message of every request of the turn."""
        return {"role": "system", "content": self.system}

    def count(self, message: Message) -> int:
        """Tokens of one of this turn's messages, counted once (measured at every model call)."""
        key = id(message)
        size = self.sizes.get(key)
        if size is None:
            size = self.sizes[key] = self.counter(message)
        return size


class Refused(Exception):
    """The model refused to answer, or its content filter stopped it."""

    def __init__(self, reason: str, words: str | None) -> None:
        self.reason = reason  # "refused" | "content_filter"
        self.words = words
        super().__init__(reason)


#: Tool results kept when a request had to be cut to fit the model's context window.
COMPACT_RESULT_CHARS = 2000


class TurnRunner:
    """Runs the turns of ``agent`` (reading its settings at each turn)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def run(
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
        started = time.perf_counter()
        store = store or self.agent._store()
        turn_id = secrets.token_hex(8)  # 16 hex digits, as uuid4().hex[:16] gave, without the UUID object
        text = scrub(text)
        lang = locale or detect_locale(user_id, text, self.agent.default_locale)
        ctx = ToolContext(
            user_id=user_id,
            provider=provider,
            profile_name=profile_name,
            locale=lang,
            message=message,
            store=store,
            turn_id=turn_id,
        )
        turn = Turn(
            ctx=ctx,
            history=self.agent._history.load(store, user_id),
            system=self.agent._system_prompt(ctx),
            counter=self.agent.token_counter,
        )
        turn.items.append({"role": "user", "content": text})
        turn.deadline = time.monotonic() + self.agent.turn_timeout
        fallback: str | None = None
        answer = ""
        refusal: str | None = None
        locale_token = TURN_LOCALE.set(lang)  # the offline model phrases in the turn's language
        try:
            answer = await within(self.agent.turn_timeout, self.loop(turn))
        except asyncio.TimeoutError:
            fallback = "deadline"
            logger.warning(
                "agent %r turn %s for %s exceeded %ss",
                self.agent.name,
                turn_id,
                mask(user_id),
                self.agent.turn_timeout,
            )
        except Refused as exc:
            fallback, refusal = exc.reason, exc.words
            logger.warning(
                "agent %r turn %s: the model %s for %s; the user is told politely",
                self.agent.name,
                turn_id,
                "refused to answer" if exc.reason == "refused" else "was stopped by the content filter",
                mask(user_id),
            )
        except ModelError as exc:
            fallback = exc.kind
            log = logger.warning if exc.retryable else logger.error
            log("agent %r model call failed for %s: %s", self.agent.name, mask(user_id), exc)
        except Exception:
            fallback = "other"
            logger.exception("agent %r turn %s failed", self.agent.name, turn_id)
        except BaseException:  # cancelled (a shutdown): no answer, no history, but calls were billed
            with batch(store):
                self.agent._history.record_usage(store, turn)
            raise
        finally:
            TURN_LOCALE.reset(locale_token)
        if fallback is None and not ctx.outbound and nothing_to_send(answer):
            fallback = "empty"  # nothing, or nothing left once formatted ("---")
        if fallback is None and turn.truncated:
            answer = f"{answer}\n\n_{fallback_text('cut', lang, self.agent.fallback_messages)}_"
        self.agent._history.remember(store, user_id, turn, fallback)
        reply = AgentReply(
            text=fallback_text(fallback, lang, self.agent.fallback_messages) if fallback else answer,
            user_id=user_id,
            turn_id=turn_id,
            model=self.agent.model.name,
            locale=lang,
            outbound=tuple(ctx.outbound),
            tool_calls=tuple(turn.records),
            usage=turn.usage,
            cost=turn.cost,
            rounds=turn.rounds,
            fallback=fallback,
            offline=self.agent.model.offline,
            metadata={**turn.metadata, **({"refusal": refusal} if refusal else {})},
            truncated=turn.truncated and fallback is None,
        )
        if logger.isEnabledFor(logging.INFO):
            self.log(turn, reply, provider, started)
        return reply

    def log(self, turn: Turn, reply: AgentReply, provider: str | None, started: float) -> None:
        logger.info(
            "agent %r turn %s user=%s provider=%s rounds=%d tools=[%s] tokens=%d/%d cached=%d cost=%s "
            "fallback=%s offline=%s %.0fms",
            self.agent.name,
            reply.turn_id,
            mask(reply.user_id),
            provider,
            turn.rounds,
            ",".join(r.name + ("" if r.ok else f"!{r.error}") for r in turn.records),
            turn.usage.prompt_tokens,
            turn.usage.completion_tokens,
            turn.usage.cached_tokens,
            turn.cost,
            reply.fallback,
            self.agent.model.offline,
            (time.perf_counter() - started) * 1000,
        )

    async def loop(self, turn: Turn) -> str:
        for round_no in range(self.agent.max_tool_rounds + 1):
            final_round = turn.force_final or round_no >= self.agent.max_tool_rounds
            response = await self.call_model(turn, "none" if final_round else "auto")
            if response.stop in ("refusal", "content_filter"):
                raise Refused("refused" if response.stop == "refusal" else "content_filter", response.refusal)
            # Calls of an answer cut at the output limit may have cut arguments: not run.
            if response.tool_calls and not final_round and response.stop != "length":
                calls = unique_ids(response.tool_calls, turn)
                turn.items.append(ModelResponse(scrub(response.content or "") or None, calls).as_message())
                if len(calls) == 1:
                    results = [await run_tool(self.agent, calls[0], turn)]
                else:
                    results = await asyncio.gather(*(run_tool(self.agent, call, turn) for call in calls))
                for call, content in zip(calls, results, strict=True):
                    turn.items.append({"role": "tool", "tool_call_id": call.id, "content": content})
                continue
            answer = scrub(response.content or "").strip()
            if response.stop == "length":
                turn.truncated = True
                logger.warning(
                    "agent %r turn %s: the answer was cut at the model's output limit (%d characters kept)",
                    self.agent.name,
                    turn.ctx.turn_id,
                    len(answer),
                )
            if answer:
                turn.items.append({"role": "assistant", "content": answer})
            return answer
        return ""  # pragma: no cover - the last round always returns

    async def call_model(self, turn: Turn, choice: ToolChoice) -> ModelResponse:
        attempt = 0
        while True:
            messages = self.request(turn)
            try:
                async with self.agent._queues.calls():
                    response = await self.agent.model.complete(
                        messages,
                        self.agent._specs,
                        tool_choice=choice,
                        parallel_tool_calls=self.agent.parallel_tool_calls,
                    )
                break
            except ModelError as exc:
                if exc.kind == "context_length" and not turn.compacted:
                    turn.compacted = True
                    logger.warning(
                        "agent %r turn %s: over the model's context window; retrying without history "
                        "and with tool results cut to %d characters (context_tokens may be too high "
                        "for this model)",
                        self.agent.name,
                        turn.ctx.turn_id,
                        COMPACT_RESULT_CHARS,
                    )
                    continue
                wait = self.retry_wait(exc, attempt, turn)
                if wait is None:
                    raise
                attempt += 1
                await asyncio.sleep(wait)  # outside the concurrency slot
        turn.rounds += 1
        turn.usage = turn.usage + response.usage
        model_id = response.model or self.agent.model.name
        cost = self.agent.prices.cost(model_id, response.usage) if self.agent.prices else None
        if cost is not None:
            turn.cost = (turn.cost or Decimal(0)) + cost
        if response.metadata:
            turn.metadata.update({k: v for k, v in response.metadata.items() if k != "id"})
        turn.usage_records.append(
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
        return response

    def retry_wait(self, exc: ModelError, attempt: int, turn: Turn) -> float | None:
        """Seconds to wait before trying the model again, or ``None`` to give up now."""
        if not exc.retryable or attempt >= self.agent.model_retries:
            return None
        wait = exc.retry_after if exc.retry_after is not None else min(8.0, 0.5 * 2**attempt)
        left = turn.deadline - time.monotonic()
        if wait >= left - 1.0:  # the call itself needs time too
            logger.warning(
                "agent %r turn %s: the model asks to wait %.1fs (%s), beyond the turn's %.1fs left: "
                "answering now",
                self.agent.name,
                turn.ctx.turn_id,
                wait,
                exc.kind,
                max(0.0, left),
            )
            return None
        return max(0.0, wait)

    def request(self, turn: Turn) -> list[Message]:
        """The messages of the next call, within ``context_tokens``: the oldest history goes first."""
        system = turn.system_message
        items = turn.items
        if turn.compacted:
            items = [short_result(m, COMPACT_RESULT_CHARS) for m in items]
            return [system, *items]
        count = turn.count
        used = count(system) + sum(count(m) for m in items)
        room = self.agent.context_tokens - used
        if turn.history.tokens <= room:
            return [system, *turn.history.messages(), *items]
        if room > 0:
            return [system, *turn.history.newest(room), *items]
        # This turn alone is over the budget (many tool rounds): shorten its tool results.
        limit = max(COMPACT_RESULT_CHARS, (self.agent.context_tokens * 4) // max(1, len(items)))
        return [system, *(short_result(m, limit) for m in items)]


# --- helpers ---------------------------------------------------------------------------------------
def unique_ids(calls: Sequence[ToolCall], turn: Turn) -> tuple[ToolCall, ...]:
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


def nothing_to_send(answer: str) -> bool:
    """Whether ``answer`` is empty once formatted for WhatsApp (``""``, ``"---"``...).

    Formatting only removes markup, so an answer with a letter or digit keeps something and is
    not formatted here (it is when it is sent).
    """
    if any(ch.isalnum() for ch in answer):
        return False
    from ..formatting import to_whatsapp

    return not to_whatsapp(answer).strip()


def short_result(message: Message, limit: int) -> Message:
    content = message.get("content")
    if message.get("role") == "tool" and isinstance(content, str) and len(content) > limit:
        return {**message, "content": shorten(content, limit)}
    return message


def mask(user_id: str) -> str:
    """Enough of a user id to follow a log, not enough to expose a phone number."""
    return user_id if len(user_id) <= 4 else "…" + user_id[-4:]
