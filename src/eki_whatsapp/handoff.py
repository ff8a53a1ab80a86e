"""Human handoff: staff take a conversation over from the bot, reply, and hand it back.

While a person has the conversation, the bot's message handlers do not run for that user (the
messages are still logged, and opt-out keywords still work). After ``WHATSAPP_HANDOFF_IDLE_SECONDS``
without staff activity the conversation goes back to the bot by itself. The agent (or any
handler) can ask for a person with :meth:`Handoff.request`; callbacks registered with
:meth:`Handoff.on_request` tell staff (e-mail, Slack...), and :meth:`Handoff.on_change` hears every
take-over and hand-back::

    @bot.handoff.on_request
    def tell_staff(state):
        slack.post(f"{state.user} needs a person: {state.reason}")

    bot.handoff.take_over("5215512345678", staff="lucia")
    bot.handoff.reply("5215512345678", "Hola, soy Lucía. ¿En qué te ayudo?", staff="lucia")
    bot.handoff.hand_back("5215512345678", staff="lucia")

State lives in the Store's key-value space (namespace ``eki.handoff``, one key per user): one
write per change, so several processes agree on who has the conversation.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from .optout import user_key

if TYPE_CHECKING:
    from .bot import Bot
    from .messages import Message
    from .providers.base import SendReceipt
    from .store import Store

__all__ = ["NAMESPACE", "Handoff", "HandoffState", "Mode", "request_human"]

logger = logging.getLogger("eki_whatsapp.handoff")

NAMESPACE = "eki.handoff"

#: ``bot``: the bot answers; ``requested``: the bot answers but a person was asked for;
#: ``human``: staff have the conversation and the bot's handlers stay quiet.
Mode = Literal["bot", "requested", "human"]

Callback = Callable[["HandoffState"], Any]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class HandoffState:
    """Who has a conversation."""

    user: str
    mode: Mode = "bot"
    #: The staff member who took over (``human``) or who handed back.
    staff: str | None = None
    #: Why a person was asked for (``requested``), or why the conversation went back.
    reason: str | None = None
    since: datetime | None = None
    #: The last time staff did something in the conversation (the idle clock starts here).
    last_activity: datetime | None = None

    @property
    def human(self) -> bool:
        return self.mode == "human"

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "staff": self.staff,
            "reason": self.reason,
            "since": self.since.isoformat() if self.since else None,
            "last_activity": self.last_activity.isoformat() if self.last_activity else None,
        }

    @classmethod
    def from_json(cls, user: str, value: Any) -> HandoffState:
        if not isinstance(value, dict) or value.get("mode") not in ("requested", "human"):
            return cls(user)
        return cls(
            user=user,
            mode=value["mode"],
            staff=value.get("staff"),
            reason=value.get("reason"),
            since=_time(value.get("since")),
            last_activity=_time(value.get("last_activity")),
        )


class Handoff:
    """Who answers each user: the bot or a person.

    Args:
        bot: the bot whose store keeps the state and whose router sends staff replies.
        idle: hand a conversation back to the bot after this long without staff activity
            (default ``WHATSAPP_HANDOFF_IDLE_SECONDS``; ``None`` or zero: never).
        clock: returns "now" (aware UTC); inject one in tests.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        idle: timedelta | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.bot = bot
        seconds = bot.settings.whatsapp_handoff_idle_seconds
        self.idle = idle if idle is not None else (timedelta(seconds=seconds) if seconds else None)
        self.clock = clock or _now
        self._on_request: list[Callback] = []
        self._on_change: list[Callback] = []
        # A store that cannot be weakly referenced: tools write the state without callbacks.
        with contextlib.suppress(TypeError):
            _by_store[bot.store] = weakref.ref(self)

    # --- callbacks -------------------------------------------------------------------------------
    def on_request(self, func: Callback) -> Callback:
        """Call ``func(state)`` when a conversation needs a person (decorator)."""
        self._on_request.append(func)
        return func

    def on_change(self, func: Callback) -> Callback:
        """Call ``func(state)`` after every take-over and hand-back (decorator)."""
        self._on_change.append(func)
        return func

    def _notify(self, callbacks: list[Callback], state: HandoffState) -> None:
        for func in callbacks:
            try:
                func(state)
            except Exception:
                # A broken notifier must not lose the state change or the user's message.
                logger.exception("handoff callback %r failed for %s", func, state.user)

    # --- state -----------------------------------------------------------------------------------
    def _save(self, state: HandoffState) -> HandoffState:
        self.bot.store.set_value(NAMESPACE, state.user, state.to_json() if state.mode != "bot" else None)
        return state

    def state(self, user: str) -> HandoffState:
        """Who has the conversation now (an idle take-over is handed back on the way)."""
        key = user_key(user)
        return self.state_of(key, self.bot.store.get_value(NAMESPACE, key))

    def state_of(self, key: str, value: Any) -> HandoffState:
        """:meth:`state` from the value stored for ``key`` (:func:`user_key`), read already."""
        state = HandoffState.from_json(key, value)
        idle = self.idle
        if state.human and idle and state.last_activity and self.clock() - state.last_activity >= idle:
            logger.info("conversation with %s handed back to the bot after %s idle", key, idle)
            back = self._save(HandoffState(key, "bot", state.staff, "idle", self.clock()))
            self._notify(self._on_change, back)
            return back
        return state

    def is_human(self, user: str) -> bool:
        """Whether staff have the conversation (the bot's handlers must not answer)."""
        return self.state(user).human

    def request(self, user: str, reason: str | None = None) -> HandoffState:
        """Flag the conversation for staff and run the :meth:`on_request` callbacks.

        The bot keeps answering until someone takes over. Asking again while a request is open,
        or while staff have the conversation, notifies nobody twice.
        """
        current = self.state(user)
        if current.mode != "bot":
            return current
        state = self._save(HandoffState(current.user, "requested", None, reason, self.clock()))
        self._notify(self._on_request, state)
        return state

    def take_over(self, user: str, *, staff: str) -> HandoffState:
        """``staff`` takes the conversation: from now on the bot's handlers stay quiet."""
        now = self.clock()
        key = user_key(user)
        state = self._save(HandoffState(key, "human", staff, None, now, now))
        self._notify(self._on_change, state)
        return state

    def hand_back(self, user: str, *, staff: str | None = None, reason: str = "staff") -> HandoffState:
        """Give the conversation back to the bot."""
        state = self._save(HandoffState(user_key(user), "bot", staff, reason, self.clock()))
        self._notify(self._on_change, state)
        return state

    def touch(self, user: str, *, staff: str) -> HandoffState:
        """Record staff activity (restarts the idle clock); takes over if the bot had it."""
        current = self.state(user)
        if not current.human:
            return self.take_over(user, staff=staff)
        return self._save(replace(current, staff=staff, last_activity=self.clock()))

    # --- staff replies -------------------------------------------------------------------------------
    def reply(
        self, user: str, message: Message | str, *, staff: str, provider: str | None = None
    ) -> SendReceipt:
        """Send ``message`` from ``staff`` through the router (opt-outs, window and failover apply)
        and log it with the staff member's name. Taking over happens on the way.

        Args:
            provider: send through this provider (the console passes the channel the user last
                wrote on); default: the routing policy decides.

        Raises:
            OptedOut: the user opted out.
            WindowClosed: free-form text while the 24-hour window is closed: send a Template.
        """
        self.touch(user, staff=staff)
        return self.bot.router.send(user, message, provider=provider, extra={"staff": staff})


#: The handoff desk of each bot's store, so a tool that only has the store reaches the callbacks.
_by_store: weakref.WeakKeyDictionary[Any, weakref.ref[Handoff]] = weakref.WeakKeyDictionary()


def request_human(store: Store, user: str, reason: str | None = None) -> HandoffState:
    """Flag ``user``'s conversation for staff, from code that has only the store (agent tools).

    The bot that owns ``store`` runs its :meth:`Handoff.on_request` callbacks; without one the
    flag is still written, so the console shows it.
    """
    ref = _by_store.get(store)
    desk = ref() if ref is not None else None
    if desk is not None:
        return desk.request(user, reason)
    key = user_key(user)
    current = HandoffState.from_json(key, store.get_value(NAMESPACE, key))
    if current.mode != "bot":
        return current
    state = HandoffState(key, "requested", None, reason, _now())
    store.set_value(NAMESPACE, key, state.to_json())
    return state
