"""Conversation memory: turns, trimming at turn boundaries, and a rough token count.

A *turn* starts with a user message and holds everything up to the next one: the assistant's
tool calls, their results and the final answer. Trimming removes whole turns from the oldest,
so a tool call is never separated from its result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

Message = dict[str, Any]
TokenCounter = Callable[[Message], int]

__all__ = ["estimate_tokens", "sanitize", "split_turns", "trim"]


def estimate_tokens(message: Message) -> int:
    """About 4 characters per token, plus a little per message (no tokenizer needed)."""
    size = len(str(message.get("content") or ""))
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        size += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    return 4 + size // 4


def split_turns(items: Sequence[Message]) -> list[list[Message]]:
    """Group messages into turns (each starts at a user message)."""
    turns: list[list[Message]] = []
    for item in items:
        if item.get("role") == "user" or not turns:
            turns.append([item])
        else:
            turns[-1].append(item)
    return turns


def sanitize(items: Sequence[Message]) -> list[Message]:
    """A history the API accepts: starts at a user message, and every tool call has its result
    (and every result its call). Repairs stored histories written by older versions or cut short.
    """
    out: list[Message] = []
    for turn in split_turns(items):
        if turn[0].get("role") != "user":
            continue
        clean: list[Message] = [turn[0]]
        i = 1
        while i < len(turn):
            msg = turn[i]
            if msg.get("role") == "assistant" and msg.get("tool_calls"):
                ids = [c.get("id") for c in msg["tool_calls"]]
                results = []
                j = i + 1
                while j < len(turn) and turn[j].get("role") == "tool":
                    results.append(turn[j])
                    j += 1
                if sorted(str(r.get("tool_call_id")) for r in results) == sorted(str(i) for i in ids):
                    clean.append(msg)
                    clean.extend(results)
                elif msg.get("content"):
                    clean.append({"role": "assistant", "content": msg["content"]})
                i = j
                continue
            if msg.get("role") == "assistant":
                clean.append(msg)
            i += 1
        out.extend(clean)
    return out


def trim(
    items: Sequence[Message],
    *,
    max_turns: int | None = None,
    max_tokens: int | None = None,
    count: TokenCounter = estimate_tokens,
) -> list[Message]:
    """Keep the newest whole turns within ``max_turns`` and ``max_tokens``.

    The newest turn is always kept, even if it alone is over the token budget.
    """
    turns = split_turns(items)
    if max_turns is not None and max_turns >= 0:
        turns = turns[-max_turns:] if max_turns else []
    if max_tokens is not None:
        kept: list[list[Message]] = []
        total = 0
        for turn in reversed(turns):
            size = sum(count(m) for m in turn)
            if kept and total + size > max_tokens:
                break
            kept.append(turn)
            total += size
        turns = list(reversed(kept))
    return [m for turn in turns for m in turn]


def dumps(items: Sequence[Message]) -> str:
    return json.dumps(list(items), ensure_ascii=False)
