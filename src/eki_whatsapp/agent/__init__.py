"""The agent: an OpenAI function-calling assistant that answers WhatsApp users on either provider.

Example::

    from eki_whatsapp import Bot
    from eki_whatsapp.agent import Agent, ToolContext, tool

    @tool
    def list_courses() -> list[str]:
        \"\"\"List the courses on offer.\"\"\"
        return ["Python", "Maths"]

    agent = Agent("You are the school's assistant. Answer in Spanish.", [list_courses])
    bot = Bot()
    bot.on_message(agent)   # answers on the channel each user wrote from

Without ``OPENAI_API_KEY`` the agent uses the :class:`OfflineChatModel` (keyword rules, no
network); with it, OpenAI (or any OpenAI-compatible server at ``OPENAI_BASE_URL``).
See ``docs/agent.md``.
"""

from __future__ import annotations

from .agent import Agent, AgentReply, ToolCallRecord
from .builtin import send_list_menu, send_reply_buttons
from .locale import FALLBACK_MESSAGES, detect_locale
from .memory import estimate_tokens, trim
from .model import ChatModel, ModelError, ModelResponse, ModelUsage, ToolCall
from .offline import OfflineChatModel
from .tools import (
    Tool,
    ToolArgumentsError,
    ToolContext,
    ToolDefinitionError,
    ToolError,
    ToolSchemaWarning,
    ToolSpec,
    tool,
)
from .usage import DEFAULT_PRICES, ModelPrice, PriceTable, UsageSummary, summarize


def __getattr__(name: str) -> object:
    # The OpenAI model imports openai lazily, so the rest works without the ``agent`` extra.
    if name == "OpenAIChatModel":
        from .openai_model import OpenAIChatModel

        return OpenAIChatModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PRICES",
    "FALLBACK_MESSAGES",
    "Agent",
    "AgentReply",
    "ChatModel",
    "ModelError",
    "ModelPrice",
    "ModelResponse",
    "ModelUsage",
    "OfflineChatModel",
    "OpenAIChatModel",
    "PriceTable",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallRecord",
    "ToolContext",
    "ToolDefinitionError",
    "ToolError",
    "ToolSchemaWarning",
    "ToolSpec",
    "UsageSummary",
    "detect_locale",
    "estimate_tokens",
    "send_list_menu",
    "send_reply_buttons",
    "summarize",
    "tool",
    "trim",
]
