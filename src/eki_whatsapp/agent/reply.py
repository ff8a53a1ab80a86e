"""What a turn of the :class:`~eki_whatsapp.agent.Agent` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .model import ModelUsage

if TYPE_CHECKING:
    from ..messages import Message as OutboundMessage

__all__ = ["AgentReply", "ToolCallRecord"]


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
