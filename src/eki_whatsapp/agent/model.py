"""The :class:`ChatModel` protocol: what the agent needs from a language model.

Conversations are lists of Chat Completions style messages (plain dicts, JSON-serialisable, which
is also how memory is stored)::

    {"role": "system" | "user", "content": "..."}
    {"role": "assistant", "content": "..." | None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "...", "arguments": "{...}"}}]}
    {"role": "tool", "tool_call_id": "call_1", "content": "..."}

Implementations: :class:`~eki_whatsapp.agent.openai_model.OpenAIChatModel` (OpenAI or any
OpenAI-compatible server) and :class:`~eki_whatsapp.agent.offline.OfflineChatModel` (no network).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from .tools import ToolSpec

__all__ = ["ChatModel", "ModelError", "ModelResponse", "ModelUsage", "ToolCall"]

ToolChoice = Literal["auto", "none", "required"]
StopReason = Literal["stop", "length", "refusal", "content_filter"]
Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str

    def as_message_part(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens of one model call. ``prompt_tokens`` includes ``cached_tokens``."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """What the model answered: text, tool calls, or both.

    ``stop`` says why the model stopped: ``"stop"`` (a complete answer or tool calls),
    ``"length"`` (cut at the output-token limit: the text is incomplete), ``"refusal"`` (the
    model declined; ``refusal`` holds its words) or ``"content_filter"`` (stopped by the
    provider's filter). ``metadata`` says where it came from, e.g. ``{"offline": True}``.
    """

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: ModelUsage = field(default_factory=ModelUsage)
    model: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stop: StopReason = "stop"
    refusal: str | None = None

    def as_message(self) -> Message:
        """The assistant message to append to the conversation."""
        msg: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [c.as_message_part() for c in self.tool_calls]
        return msg


class ModelError(Exception):
    """The model could not answer.

    Attributes:
        kind: ``rate_limited`` (429), ``unavailable`` (5xx, connection), ``timeout``, ``auth``
            (401/403: check ``OPENAI_API_KEY``), ``context_length`` (the request is over the
            model's context window), ``bad_request`` (other 4xx) or ``other``.
        status: the HTTP status, when there was one.
        retryable: whether trying again later may work.
        retry_after: seconds the server asked to wait (``Retry-After``), when it said.
    """

    def __init__(
        self, kind: str, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.retryable = kind in ("rate_limited", "unavailable", "timeout")
        super().__init__(f"{kind}: {message}")


@runtime_checkable
class ChatModel(Protocol):
    """A language model that can call tools.

    Attributes:
        name: the model id, used for usage records and prices.
        offline: ``True`` for models that do not call a real LLM.
    """

    name: str
    offline: bool

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        tool_choice: ToolChoice = "auto",
        parallel_tool_calls: bool = True,
    ) -> ModelResponse:
        """Answer the conversation. Raise :class:`ModelError` when the model cannot answer."""
        ...

    async def aclose(self) -> None:
        """Release network clients this model created."""
        ...
