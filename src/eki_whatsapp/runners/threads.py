"""The default runner: claimed work runs on the bot's handler threads, in this process."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..bot import Bot
    from . import Work

logger = logging.getLogger("eki_whatsapp.handling")


class ThreadRunner:
    """Runs work on the bot's thread pool (``WHATSAPP_HANDLER_WORKERS`` threads).

    Work is leased to this process when it is recorded, so a process that dies mid-handler
    leaves leases that expire: another process's sweeper (or this one's, restarted) takes them.
    """

    leases_here = True
    in_process = True

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    def submit(self, work: Work) -> None:
        bot = self._bot
        # The sender's opt-out and handoff states are read here, on the thread that answered
        # the webhook, right after the message's own write: a read on the handler thread would
        # make the two threads trade the interpreter lock around it (about 100 us a message).
        try:
            states = None if work.event is None else bot.handlers.user_states(work.event)
        except Exception:  # (a store of your own may raise anything): the handler reads them again
            logger.warning("reading the states of %s's sender failed", work.id, exc_info=True)
            states = None
        bot.background.submit(bot.worker.process, work, bot.outcomes, states)

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "ThreadRunner()"
