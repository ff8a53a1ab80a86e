"""Handlers of the test site: echo every text back on the channel it came in on."""

from __future__ import annotations

from typing import Any

from eki_whatsapp import Bot, InboundMessage


def setup(bot: Bot) -> None:
    """``EKI_WHATSAPP_BOT`` target: register the echo handler on the default Django bot."""

    @bot.on_message(types=["text"])
    def echo(message: InboundMessage, ctx: Any) -> None:
        ctx.reply(f"echo: {message.text}")
