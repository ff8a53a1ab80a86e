"""Conversation memory: turns, trimming at turn boundaries, and a rough token count.

A *turn* starts with a user message and holds everything up to the next one: the assistant's
tool calls, their results and the final answer. Trimming removes whole turns from the oldest,
so a tool call is never separated from its result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain
from typing import Any

Message = dict[str, Any]
TokenCounter = Callable[[Message], int]

__all__ = [
    "Conversation",
    "estimate_tokens",
    "fit",
    "recall",
    "repair_turn",
    "sanitize",
    "scrub",
    "shorten",
    "split_turns",
    "trim",
]


def scrub(text: str) -> str:
    """``text`` as valid Unicode: lone surrogates (from a tool's bytes decoded with
    ``surrogateescape``, a bad JSON escape...) become U+FFFD.

    Such a string cannot be encoded to UTF-8: kept in memory, it would make every later request
    of that user fail before it is sent, and the SQLite store would refuse to save the turn.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def shorten(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, with a note that tells the model so."""
    if len(text) <= limit:
        return text
    note = (
        f"\n[truncated: the result had {len(text):,} characters; only the first {limit:,} are shown. "
        "If you need the rest, call the tool again asking for less (a filter, a page).]"
    )
    return text[:limit] + note


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
    return [m for turn in split_turns(items) for m in repair_turn(turn)]


def repair_turn(turn: Sequence[Message]) -> list[Message]:
    """One turn of :func:`sanitize`: nothing when it does not start at a user message; tool
    calls without all their results (or results without their call) dropped, the text kept."""
    if not turn or turn[0].get("role") != "user":
        return []
    turn = [_scrubbed(m) for m in turn]
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
    return clean


def _scrubbed(message: Message) -> Message:
    content = message.get("content")
    if content.__class__ is str and not content.isascii():  # ASCII cannot hold a lone surrogate
        clean = scrub(content)
        if clean is not content:
            return {**message, "content": clean}
    return message


def fit(items: Sequence[Message], budget: int, *, count: TokenCounter = estimate_tokens) -> list[Message]:
    """The newest whole turns of ``items`` within ``budget`` tokens (possibly none)."""
    kept: list[list[Message]] = []
    total = 0
    for turn in reversed(split_turns(items)):
        size = sum(count(m) for m in turn)
        if total + size > budget:
            break
        kept.append(turn)
        total += size
    return [m for turn in reversed(kept) for m in turn]


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


@dataclass(frozen=True)
class Conversation:
    """A history as whole turns, oldest first, with each turn's tokens counted once (a turn
    measures its history for every model call and again when it saves it).

    ``start``, ``stored`` and ``version`` say where it came from: ``stored`` messages were in
    the store (at ``version``, when the store tells versions), and when its older messages are
    the last ones of those as stored (nothing repaired), ``start`` is the index of the first
    one, so a save can drop ``start`` messages and append the rest instead of writing the whole
    history again. ``None`` when it cannot.
    """

    turns: list[list[Message]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    start: int | None = None
    stored: int = 0
    version: str | None = None

    @property
    def tokens(self) -> int:
        return sum(self.sizes)

    def messages(self) -> list[Message]:
        return list(self._messages)

    @cached_property
    def _messages(self) -> tuple[Message, ...]:  # read for every model call of a turn
        return tuple(chain.from_iterable(self.turns))

    def newest(self, budget: int) -> list[Message]:
        """The newest whole turns within ``budget`` tokens (possibly none), as :func:`fit`."""
        start, total = len(self.turns), 0
        while start and total + self.sizes[start - 1] <= budget:
            start -= 1
            total += self.sizes[start]
        return [m for turn in self.turns[start:] for m in turn]

    def extended(self, items: Sequence[Message], *, count: TokenCounter = estimate_tokens) -> Conversation:
        """This conversation followed by the turns of ``items``."""
        turns = split_turns(items)
        sizes = [sum(count(m) for m in t) for t in turns]
        return Conversation(
            turns=[*self.turns, *turns],
            sizes=[*self.sizes, *sizes],
            start=self.start,
            stored=self.stored,
            version=self.version,
        )

    def trimmed(self, *, max_turns: int | None = None, max_tokens: int | None = None) -> Conversation:
        """The newest whole turns within ``max_turns`` and ``max_tokens``, as :func:`trim` keeps
        them (the newest turn always)."""
        first = 0
        if max_turns is not None and max_turns >= 0:
            first = max(0, len(self.turns) - max_turns)
        if max_tokens is not None:
            total = sum(self.sizes[first:])
            while total > max_tokens and first < len(self.turns) - 1:
                total -= self.sizes[first]
                first += 1
        if not first:
            return self
        start = None if self.start is None else self.start + sum(len(t) for t in self.turns[:first])
        return Conversation(
            turns=self.turns[first:],
            sizes=self.sizes[first:],
            start=start,
            stored=self.stored,
            version=self.version,
        )

    def appended(self) -> tuple[int, list[Message]] | None:
        """``(messages dropped from the stored history, messages to append)`` that turn the
        stored history into this one, or ``None`` when it must be written whole."""
        if self.start is None or self.start > self.stored:
            return None
        return self.start, self.messages()[self.stored - self.start :]


def recall(
    items: Sequence[Message],
    *,
    max_turns: int | None = None,
    max_tokens: int | None = None,
    count: TokenCounter = estimate_tokens,
) -> Conversation:
    """``trim(sanitize(items), ...)`` in one pass from the newest turn: a stored history may be
    far longer than what is kept, and only the turns kept are repaired and counted."""
    turns: list[list[Message]] = []
    sizes: list[int] = []
    total = 0
    for turn in reversed(split_turns(items)):
        if max_turns is not None and 0 <= max_turns <= len(turns):
            break
        clean = repair_turn(turn)
        if not clean:
            continue
        size = sum(count(m) for m in clean)
        if max_tokens is not None and turns and total + size > max_tokens:
            break
        turns.append(clean)
        sizes.append(size)
        total += size
    kept = Conversation(turns[::-1], sizes[::-1], stored=len(items))
    messages = kept.messages()
    first = len(items) - len(messages)
    if items[first:] == messages:  # nothing repaired: a save may append to what is stored
        return replace(kept, start=first)
    return kept


def dumps(items: Sequence[Message]) -> str:
    return json.dumps(list(items), ensure_ascii=False)
