"""Optional built-in tools that let the model send WhatsApp reply buttons or a list menu, or
ask for a person.

Enable the interactive ones with ``Agent(..., interactive_tools=True)``. The message goes out
after the answer text, on the channel the user wrote from; on Twilio without a Content Template
the buttons and rows are rendered as numbered text (see ``docs/messages.md``).

Add :data:`ask_for_human` with ``Agent(..., tools=[ask_for_human])``: the model flags the
conversation for staff (``bot.handoff.on_request`` callbacks and the support console hear it).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .tools import Tool, ToolContext, ToolError, tool

__all__ = ["INTERACTIVE_TOOLS", "MenuRow", "ask_for_human", "send_list_menu", "send_reply_buttons"]


@tool
def send_reply_buttons(body: str, buttons: list[str], ctx: ToolContext) -> str:
    """Show the user up to 3 tappable reply buttons under a short text, for a quick choice
    (yes/no, pick one of a few options). The user's tap comes back as their next message.
    After calling it, end your turn with a very short answer or none.

    Args:
        body: the question or text above the buttons (at most 1024 characters).
        buttons: 1 to 3 button titles, each at most 20 characters.
    """
    from ..messages import Buttons, MessageError

    try:
        ctx.attach(Buttons(body, [b.strip() for b in buttons]))
    except MessageError as exc:
        raise ToolError(f"buttons not sent: {exc}") from exc
    return "buttons shown to the user"


class MenuRow(BaseModel):
    """A row of a list menu."""

    title: str = Field(description="at most 24 characters")
    description: str | None = Field(description="at most 72 characters, or null")


@tool
def send_list_menu(body: str, button: str, rows: list[MenuRow], ctx: ToolContext) -> str:
    """Show the user a list menu (a button that opens up to 10 options), for a choice among more
    than 3 options. The chosen row comes back as the user's next message. After calling it, end
    your turn with a very short answer or none.

    Args:
        body: the text above the menu button (at most 1024 characters).
        button: the label of the menu button (at most 20 characters), e.g. "Ver opciones".
        rows: 1 to 10 options.
    """
    from ..messages import ListMenu, MessageError, Row

    try:
        menu_rows = [Row(f"row_{i + 1}", r.title.strip(), r.description) for i, r in enumerate(rows)]
        ctx.attach(ListMenu(body, button, menu_rows))
    except MessageError as exc:
        raise ToolError(f"list not sent: {exc}") from exc
    return "list menu shown to the user"


INTERACTIVE_TOOLS: tuple[Tool, ...] = (send_reply_buttons, send_list_menu)


@tool
def ask_for_human(reason: str, ctx: ToolContext) -> str:
    """Ask for a person from the team to take over this conversation: when the user asks for a
    human, is upset, or needs something you cannot do. Then tell the user briefly that a person
    will answer soon.

    Args:
        reason: one short sentence for the staff: what the user needs.
    """
    from ..handoff import request_human

    if ctx.store is None:
        raise ToolError("no store: this agent does not run under a bot, nobody can be asked")
    request_human(ctx.store, ctx.user_id, reason)
    return "the team has been asked; a person will take over this conversation"
