"""Opt-out: a user who writes STOP (BAJA, ALTO, CANCELAR, PARAR...) gets no more messages.

The bot answers the keyword once with a confirmation; every later send to that user is refused
by the router *before* any request is made, with :class:`OptedOut` (so it costs nothing), unless
the send is marked ``exempt=True``. Writing START (ALTA, INICIAR...) subscribes again. Staff can
also block and unblock a user (the admin's actions do that).

State lives in the Store's key-value space (namespace ``eki.optout``, one key per user), so every
process and every framework sees the same list::

    bot.optouts.is_opted_out("5215512345678")
    bot.optouts.block("+52 1 55 1234 5678", by="staff:lucia")
    bot.optouts.unblock("5215512345678")
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .addresses import normalize
from .errors import EkiWhatsAppError

if TYPE_CHECKING:
    from .events import InboundMessage
    from .settings import Settings
    from .store import Store

__all__ = [
    "DEFAULT_OPTIN_KEYWORDS",
    "DEFAULT_OPTOUT_KEYWORDS",
    "NAMESPACE",
    "OptOutState",
    "OptOuts",
    "OptedOut",
    "normalize_keyword",
]

NAMESPACE = "eki.optout"

logger = logging.getLogger("eki_whatsapp.optout")

#: ``listener(user, state)``: ``state`` is ``None`` when the user may be messaged again.
Listener = Callable[[str, "OptOutState | None"], object]

#: Keyword → language of the confirmation (Spanish, English and Portuguese speakers).
DEFAULT_OPTOUT_KEYWORDS: Mapping[str, str] = {
    "BAJA": "es",
    "ALTO": "es",
    "CANCELAR": "es",
    "DETENER": "es",
    "STOP": "en",
    "STOPALL": "en",
    "UNSUBSCRIBE": "en",
    "CANCEL": "en",
    "END": "en",
    "QUIT": "en",
    "PARAR": "pt",
    "SAIR": "pt",
    "DESCADASTRAR": "pt",
}
DEFAULT_OPTIN_KEYWORDS: Mapping[str, str] = {
    "ALTA": "es",
    "START": "en",
    "UNSTOP": "en",
    "SUBSCRIBE": "en",
    "INICIAR": "pt",
    "VOLTAR": "pt",
}
_CONFIRM_OUT = {
    "es": "Listo: no te enviaremos más mensajes. Si cambias de opinión, escribe ALTA.",
    "en": "Done: you will not get more messages from us. Write START to subscribe again.",
    "pt": "Pronto: você não receberá mais mensagens. Se mudar de ideia, escreva INICIAR.",
}
_CONFIRM_IN = {
    "es": "¡Bienvenido de nuevo! Volverás a recibir nuestros mensajes. "
    "Escribe BAJA para dejar de recibirlos.",
    "en": "Welcome back! You will get our messages again. Write STOP to stop them.",
    "pt": "Bem-vindo de volta! Você voltará a receber nossas mensagens. Escreva PARAR para não recebê-las.",
}


class OptedOut(EkiWhatsAppError):
    """A send to a user who opted out (or was blocked) was refused before any request.

    Nothing was sent and nothing is charged. Send with ``exempt=True`` for the rare message that
    must still go (e.g. a legally required notice), or wait until the user writes START/ALTA.
    """

    def __init__(self, user: str, state: OptOutState | None = None) -> None:
        self.user = user
        self.state = state
        since = f" since {state.at:%Y-%m-%d %H:%M:%S} UTC" if state is not None and state.at else ""
        how = f" (keyword {state.keyword})" if state is not None and state.keyword else ""
        super().__init__(
            f"{user} opted out{since}{how}: the message was not sent. It is sent again once the user "
            "writes a re-subscribe keyword (WHATSAPP_OPTIN_KEYWORDS), or pass exempt=True"
        )


@dataclass(frozen=True, slots=True)
class OptOutState:
    """Why and when a user opted out."""

    user: str
    at: datetime | None
    #: The keyword the user wrote (``None`` when staff blocked the user).
    keyword: str | None = None
    #: ``user`` or the staff member who blocked (``staff:lucia``).
    by: str = "user"

    def to_json(self) -> dict[str, Any]:
        return {
            "opted_out": True,
            "at": self.at.isoformat() if self.at else None,
            "keyword": self.keyword,
            "by": self.by,
        }

    @classmethod
    def from_json(cls, user: str, value: Any) -> OptOutState | None:
        if not isinstance(value, dict) or not value.get("opted_out"):
            return None
        at = value.get("at")
        return cls(
            user=user,
            at=datetime.fromisoformat(at) if isinstance(at, str) else None,
            keyword=value.get("keyword"),
            by=str(value.get("by") or "user"),
        )


def normalize_keyword(text: str | None) -> str:
    """``" Baja. "`` → ``"BAJA"``: upper case, no accents, no surrounding punctuation or spaces."""
    if not text:
        return ""
    plain = text
    if not text.isascii():  # (ASCII has no accents to strip: the usual message skips this)
        plain = unicodedata.normalize("NFKD", text)
        plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return plain.strip().strip(".!¡¿?,;:*_~\"'").strip().upper()


def _keywords(configured: Iterable[str] | None, defaults: Mapping[str, str]) -> dict[str, str]:
    if configured is None:
        return dict(defaults)
    return {normalize_keyword(k): defaults.get(normalize_keyword(k), "es") for k in configured if k.strip()}


class OptOuts:
    """The opt-out list of a bot, kept in its Store.

    Args:
        store: where the list lives.
        settings: ``WHATSAPP_OPTOUT_KEYWORDS``, ``WHATSAPP_OPTIN_KEYWORDS`` and the confirmation
            texts (``WHATSAPP_OPTOUT_CONFIRMATION``, ``WHATSAPP_OPTIN_CONFIRMATION``).
    """

    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        self.store = store
        self.stop_keywords = _keywords(
            settings.whatsapp_optout_keywords if settings is not None else None, DEFAULT_OPTOUT_KEYWORDS
        )
        self.start_keywords = _keywords(
            settings.whatsapp_optin_keywords if settings is not None else None, DEFAULT_OPTIN_KEYWORDS
        )
        # A keyword with accents and punctuation around it is well within this; a longer text is
        # no keyword and is not normalised (the check runs on every inbound message).
        self._longest = 4 * max((len(k) for k in (*self.stop_keywords, *self.start_keywords)), default=0) + 16
        self.stop_confirmation = settings.whatsapp_optout_confirmation if settings is not None else None
        self.start_confirmation = settings.whatsapp_optin_confirmation if settings is not None else None
        self._listeners: list[Listener] = []

    def on_change(self, func: Listener) -> Listener:
        """Call ``func(user, state)`` after every opt-out, opt-in, block and unblock (decorator)."""
        self._listeners.append(func)
        return func

    def _notify(self, user: str, state: OptOutState | None) -> None:
        for func in self._listeners:
            try:
                func(user, state)
            except Exception:
                logger.exception("opt-out listener %r failed for %s", func, user)

    @property
    def enabled(self) -> bool:
        """Whether any keyword is configured (an empty list turns keyword handling off)."""
        return bool(self.stop_keywords or self.start_keywords)

    # --- the list ----------------------------------------------------------------------------
    def state(self, user: str) -> OptOutState | None:
        """Why ``user`` opted out, or ``None`` when the user may be messaged."""
        key = user_key(user)
        return OptOutState.from_json(key, self.store.get_value(NAMESPACE, key))

    def is_opted_out(self, user: str) -> bool:
        return self.state(user) is not None

    def opt_out(self, user: str, *, keyword: str | None = None, by: str = "user") -> OptOutState:
        """Record an opt-out (a keyword from the user, or a staff block)."""
        state = OptOutState(user_key(user), datetime.now(timezone.utc), keyword, by)
        self.store.set_value(NAMESPACE, state.user, state.to_json())
        self._notify(state.user, state)
        return state

    def opt_in(self, user: str) -> None:
        """Remove ``user`` from the list."""
        key = user_key(user)
        self.store.set_value(NAMESPACE, key, None)
        self._notify(key, None)

    def block(self, user: str, *, by: str = "staff") -> OptOutState:
        """Staff stop all messages to ``user`` (same effect as the user writing STOP)."""
        return self.opt_out(user, by=by)

    def unblock(self, user: str) -> None:
        """Staff allow messages to ``user`` again."""
        self.opt_in(user)

    def check(self, user: str) -> None:
        """Raise :class:`OptedOut` when ``user`` must not be messaged."""
        state = self.state(user)
        if state is not None:
            raise OptedOut(state.user, state)

    # --- inbound keywords ----------------------------------------------------------------------
    def classify(self, message: InboundMessage) -> tuple[str, str] | None:
        """``("stop" | "start", language)`` when the whole message is a keyword, else ``None``."""
        if message.type != "text" or len(message.text or "") > self._longest:
            # A tapped button titled "Cancelar" cancels a booking, not the subscription.
            return None
        word = normalize_keyword(message.text)
        if word in self.stop_keywords:
            return "stop", self.stop_keywords[word]
        if word in self.start_keywords:
            return "start", self.start_keywords[word]
        return None

    def confirmation(self, action: str, language: str) -> str:
        """The text that confirms an opt-out (``stop``) or a re-subscription (``start``)."""
        if action == "stop":
            return self.stop_confirmation or _CONFIRM_OUT.get(language, _CONFIRM_OUT["es"])
        return self.start_confirmation or _CONFIRM_IN.get(language, _CONFIRM_IN["es"])


def user_key(user: str) -> str:
    """The user as the Store keeps it (digits, no ``+``/``whatsapp:``; a BSUID as given)."""
    return normalize(user)
