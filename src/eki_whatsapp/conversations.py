"""Conversations for a support console, read from any Store: one per user and business number.

The Flask console uses these directly; the Django admin keeps its own table but shares the
plain-words helpers (:func:`e164`, :func:`explain_error`, :func:`media_refs`)::

    for c in list_conversations(bot, search="+52 55"):
        print(c.name, c.number, c.providers, c.unanswered, c.mode)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from .addresses import strip_channel
from .events import MediaRef
from .store.base import LogEntry

if TYPE_CHECKING:
    from .bot import Bot

__all__ = [
    "WINDOW",
    "ConversationSummary",
    "business_of",
    "e164",
    "explain_error",
    "history",
    "list_conversations",
    "media_refs",
    "search_digits",
]

WINDOW = timedelta(hours=24)


def e164(number: str | None) -> str:
    """``5215512345678`` → ``+5215512345678``; a BSUID or a name is shown as it is."""
    if not number:
        return ""
    return f"+{number}" if number.isdigit() else number


def search_digits(text: str) -> str:
    """What to look for in stored numbers: ``"+52 1 55-1234"`` → ``"521551234"`` (``""``: not a number)."""
    plain = strip_channel(text)
    for ch in " +-().":
        plain = plain.replace(ch, "")
    return plain if plain.isdigit() else ""


def business_of(entry: LogEntry, numbers: Mapping[str, str] | None = None) -> str:
    """The business number of a log row, as people know it: the display number rather than a
    provider's id for it (Meta's phone-number id), when the row or ``numbers`` (``{business
    id: display number}``, see :func:`_display_numbers`) tells it."""
    side = entry.recipient if entry.direction == "in" else entry.sender
    known = entry.extra.get("business_number") if entry.extra else None
    if isinstance(known, str) and known:
        return known
    if numbers and side and side in numbers:
        return numbers[side]
    return side or ""


@dataclass
class ConversationSummary:
    """One row of the conversation list."""

    user: str
    business: str
    name: str | None = None
    providers: list[str] = field(default_factory=list)
    last_at: datetime | None = None
    last_text: str | None = None
    last_direction: str | None = None
    last_inbound_at: datetime | None = None
    #: The provider of the user's latest message (staff replies go out there).
    last_inbound_provider: str | None = None
    #: Messages from the user since the last one that went out to them.
    unanswered: int = 0
    mode: str = "bot"
    opted_out: bool = False

    @property
    def number(self) -> str:
        return e164(self.user)

    @property
    def window_until(self) -> datetime | None:
        return self.last_inbound_at + WINDOW if self.last_inbound_at else None

    def window_open(self, now: datetime | None = None) -> bool:
        until = self.window_until
        return until is not None and (now or datetime.now(timezone.utc)) < until


def _when(entry: LogEntry) -> datetime:
    return entry.timestamp or entry.created_at or datetime.min.replace(tzinfo=timezone.utc)


def _conversation_rows(bot: Bot, limit: int) -> list[LogEntry]:
    return [
        r
        for r in bot.store.list_log(limit=limit)
        if r.direction in ("in", "out") and not r.type.startswith("event:") and r.user
    ]


def _display_numbers(rows: Iterable[LogEntry]) -> dict[str, str]:
    """Business id → display number, learnt from inbound rows: a provider that addresses the
    business by an id (Meta's phone-number id) logs the number people know as ``business_number``."""
    found: dict[str, str] = {}
    for row in rows:
        number = row.extra.get("business_number") if row.extra else None
        if row.direction == "in" and row.recipient and isinstance(number, str):
            found.setdefault(row.recipient, number)
    return found


def list_conversations(
    bot: Bot, *, search: str | None = None, limit: int = 2000
) -> list[ConversationSummary]:
    """Conversations of the latest ``limit`` log rows, newest first.

    ``search`` matches the number with or without ``+``/spaces, the profile name, or any text.
    """
    rows = _conversation_rows(bot, limit)
    numbers = _display_numbers(rows)
    found: dict[tuple[str, str], ConversationSummary] = {}
    texts: dict[tuple[str, str], list[str]] = {}
    for row in sorted(rows, key=_when):  # oldest first, so "last" wins
        key = (row.user or "", business_of(row, numbers))
        conv = found.get(key)
        if conv is None:
            conv = found[key] = ConversationSummary(user=key[0], business=key[1])
        if row.provider not in conv.providers:
            conv.providers.append(row.provider)
        conv.last_at, conv.last_text, conv.last_direction = _when(row), row.text, row.direction
        texts.setdefault(key, []).append(row.text or "")
        if row.direction == "in":
            name = row.extra.get("profile_name") if row.extra else None
            conv.name = name if isinstance(name, str) and name else conv.name
            conv.last_inbound_at, conv.last_inbound_provider = _when(row), row.provider
            conv.unanswered += 1
        elif row.status != "failed":
            conv.unanswered = 0
    out = sorted(found.values(), key=lambda c: c.last_at or datetime.min.replace(tzinfo=timezone.utc))
    out.reverse()
    if search and search.strip():
        digits = search_digits(search)
        needle = search.strip().casefold()

        def hit(c: ConversationSummary) -> bool:
            if digits and digits in c.user:
                return True
            if c.name and needle in c.name.casefold():
                return True
            return any(needle in t.casefold() for t in texts[(c.user, c.business)])

        out = [c for c in out if hit(c)]
    for conv in out:
        conv.mode = bot.handoff.state(conv.user).mode
        conv.opted_out = bot.optouts.is_opted_out(conv.user)
    return out


def history(bot: Bot, user: str, business: str | None = None, *, limit: int = 500) -> list[LogEntry]:
    """The messages with ``user`` (to ``business`` when given), oldest first."""
    rows = [r for r in bot.store.list_log(user=user, limit=limit) if not r.type.startswith("event:")]
    if business is not None:
        numbers = _display_numbers(bot.store.list_log(user=user, direction="in", limit=limit))
        rows = [r for r in rows if business_of(r, numbers) == business]
    return sorted(rows, key=lambda r: (_when(r), r.id or 0))


def media_refs(entry: LogEntry) -> tuple[MediaRef, ...]:
    """The media of an inbound log row, rebuilt from its raw data (download with the provider)."""
    if entry.direction != "in" or not isinstance(entry.raw, Mapping):
        return ()
    from .providers import media_refs as provider_media_refs

    return provider_media_refs(entry.provider, entry.type, entry.raw)


# --- errors in plain words -----------------------------------------------------------------------
_WINDOW = {
    "en": "Not delivered: the user has not written in the last 24 hours, so WhatsApp only allows "
    "an approved template. Send a template instead.",
    "es": "No se entregó: el usuario no ha escrito en las últimas 24 horas y WhatsApp solo permite "
    "enviar una plantilla aprobada. Envía una plantilla.",
    "pt": "Não entregue: o usuário não escreveu nas últimas 24 horas e o WhatsApp só permite um "
    "modelo aprovado. Envie um modelo.",
}
#: Explanations by key; each provider package maps its codes to these keys (``errors.EXPLAINED``).
_PLAIN: dict[str, dict[str, str]] = {
    "window": _WINDOW,
    "not_on_whatsapp": {
        "en": "Not delivered: the number cannot receive WhatsApp messages (no WhatsApp, old app, or "
        "the user has not accepted the new terms).",
        "es": "No se entregó: ese número no puede recibir mensajes de WhatsApp (no tiene WhatsApp, "
        "su aplicación es antigua o no aceptó los nuevos términos).",
        "pt": "Não entregue: o número não pode receber mensagens do WhatsApp (sem WhatsApp, app "
        "antigo ou termos não aceitos).",
    },
    "marketing_limit": {
        "en": "Not delivered: WhatsApp limits how many marketing messages a user gets. Try later.",
        "es": "No se entregó: WhatsApp limita cuántos mensajes de marketing recibe cada usuario. "
        "Inténtalo más tarde.",
        "pt": "Não entregue: o WhatsApp limita quantas mensagens de marketing cada usuário recebe. "
        "Tente mais tarde.",
    },
    "account_rate": {
        "en": "Too many messages per second: WhatsApp slowed the account down. It is retried.",
        "es": "Demasiados mensajes por segundo: WhatsApp frenó la cuenta. Se reintenta.",
        "pt": "Mensagens demais por segundo: o WhatsApp limitou a conta. Será tentado de novo.",
    },
    "user_rate": {
        "en": "Too many messages to this user in a short time. Wait a moment.",
        "es": "Demasiados mensajes a este usuario en poco tiempo. Espera un momento.",
        "pt": "Mensagens demais para este usuário em pouco tempo. Aguarde um momento.",
    },
    "template": {
        "en": "The template does not exist in that language or is not approved yet.",
        "es": "La plantilla no existe en ese idioma o aún no está aprobada.",
        "pt": "O modelo não existe nesse idioma ou ainda não foi aprovado.",
    },
    "meta_token": {
        "en": "The Meta access token expired or is wrong: a developer must renew META_WHATSAPP_TOKEN.",
        "es": "El token de acceso de Meta venció o es incorrecto: hay que renovar META_WHATSAPP_TOKEN.",
        "pt": "O token de acesso da Meta expirou ou está errado: é preciso renovar META_WHATSAPP_TOKEN.",
    },
    "invalid_user": {
        "en": "Not delivered: the recipient is not a valid WhatsApp user.",
        "es": "No se entregó: el destinatario no es un usuario válido de WhatsApp.",
        "pt": "Não entregue: o destinatário não é um usuário válido do WhatsApp.",
    },
    "sender_rate": {
        "en": "Too many messages: Twilio slowed the sender down. It is retried.",
        "es": "Demasiados mensajes: Twilio frenó el envío. Se reintenta.",
        "pt": "Mensagens demais: a Twilio limitou o envio. Será tentado de novo.",
    },
    "invalid_number": {
        "en": "The phone number is not valid.",
        "es": "El número de teléfono no es válido.",
        "pt": "O número de telefone não é válido.",
    },
}
_BY_NAME: dict[str, dict[str, str]] = {
    "WindowClosed": _WINDOW,
    "OptedOut": {
        "en": "Not sent: the user asked to receive no more messages (opt-out).",
        "es": "No se envió: el usuario pidió no recibir más mensajes (baja).",
        "pt": "Não enviado: o usuário pediu para não receber mais mensagens.",
    },
    "ProviderDown": {
        "en": "The provider did not answer; the message was tried again or through the other provider.",
        "es": "El proveedor no respondió; se reintentó o se envió por el otro proveedor.",
        "pt": "O provedor não respondeu; foi tentado de novo ou pelo outro provedor.",
    },
    "AuthError": {
        "en": "The provider refused the credentials: a developer must check the settings.",
        "es": "El proveedor rechazó las credenciales: hay que revisar la configuración.",
        "pt": "O provedor recusou as credenciais: é preciso revisar a configuração.",
    },
}
_UNKNOWN = {
    "en": "Not delivered (error {code}).",
    "es": "No se entregó (error {code}).",
    "pt": "Não entregue (erro {code}).",
}


def explain_error(
    code: int | None, *, error: str | None = None, language: str = "es", status: str | None = None
) -> str | None:
    """A failure in words a support person understands, in ``language`` (``es``, ``en``, ``pt``).

    ``code`` is the provider's error code; ``error`` the exception name logged with the row
    (``WindowClosed``, ``OptedOut``...). ``None`` when there is nothing to explain.
    """
    lang = (language or "es").split("-")[0].lower()
    lang = lang if lang in ("es", "en", "pt") else "en"
    from .providers import explained_codes

    key = explained_codes().get(code) if code is not None else None
    texts = _PLAIN.get(key) if key is not None else None
    if texts is None and error:
        texts = _BY_NAME.get(error)
    if texts is not None:
        return texts[lang]
    if code is not None or status in ("failed", "undelivered"):
        return _UNKNOWN[lang].format(code=code if code is not None else "?")
    return None


def window_text(until: datetime | None, now: datetime | None = None) -> tuple[bool, str]:
    """``(open, "until 2026-12-01 14:03:09 UTC")`` for a window end."""
    if until is None:
        return False, ""
    return (now or datetime.now(timezone.utc)) < until, f"{until:%Y-%m-%d %H:%M:%S} UTC"
