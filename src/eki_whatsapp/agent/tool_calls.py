"""Running the tool calls a model asks for: validation, loop detection, timeouts, and errors
turned into messages the model can act on (never into a crashed turn)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING

from .memory import scrub, shorten
from .model import ToolCall
from .reply import ToolCallRecord
from .toolpool import ToolStuck, within
from .tools import ToolArgumentsError, ToolError, render_result

if TYPE_CHECKING:
    from .agent import Agent
    from .turn import Turn

logger = logging.getLogger("eki_whatsapp.agent")

__all__ = ["run_tool"]

#: Arguments in one spelling, to tell a repeated call (json.dumps with options builds an encoder
#: on every call).
_CALL_KEY = json.JSONEncoder(sort_keys=True, default=str)


async def run_tool(agent: Agent, call: ToolCall, turn: Turn) -> str:
    """Run one tool call of ``turn``; its result, or an error the model can act on (never raises)."""
    started = time.perf_counter()
    error: str | None = None
    t = agent.tools.get(call.name)
    try:
        if t is None:
            error = "unknown_tool"
            return (
                f"Error: there is no tool named {call.name!r}. "
                f"Available tools: {', '.join(agent.tools) or 'none'}."
            )
        try:
            kwargs = t.validate(call.arguments)
        except ToolArgumentsError as exc:
            error = "invalid_arguments"
            return f"Error: invalid arguments for {t.name}: {exc}. Fix them and call it again."
        key = t.name + _CALL_KEY.encode(kwargs)
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
        timeout = t.timeout or agent.tool_timeout
        try:
            if t.is_async:
                result = await within(timeout, t.invoke(kwargs, turn.ctx))
            else:
                result = await agent._tool_pool().run(t, kwargs, turn.ctx, timeout)
        except asyncio.TimeoutError:
            error = "timeout"
            if t.is_async:
                logger.warning("tool %s timed out after %ss", t.name, timeout)
            return f"Error: {t.name} did not finish within {timeout:g} seconds. Tell the user to try later."
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
        return shorten(scrub(render_result(result)), agent.max_tool_result_chars)
    finally:
        turn.records.append(ToolCallRecord(call.name, call.arguments, error, time.perf_counter() - started))
