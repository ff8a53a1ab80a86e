"""The support console for Flask: conversations, a chat page, take over / reply / hand back, block.

It reads the core's data (the bot's Store) and acts through the core (``bot.handoff``,
``bot.optouts``, the router), so it shows and does what the Django admin does, without Django::

    import hmac, os
    from flask import request
    from eki_whatsapp_flask import console_blueprint

    def staff_only():
        # The minimal authentication: HTTP Basic against one password from the environment.
        auth = request.authorization
        if auth and auth.password and hmac.compare_digest(auth.password, os.environ["CONSOLE_PASSWORD"]):
            return auth.username          # the staff name logged with every reply
        return None                        # -> 401 with a Basic challenge

    app.secret_key = os.environ["FLASK_SECRET_KEY"]   # the CSRF token lives in the signed session
    app.register_blueprint(console_blueprint(bot, auth=staff_only), url_prefix="/console")

``auth`` is required: it is called before every console request and returns the staff member's
name, ``None`` (refused: 401), or a response to return instead (e.g. a redirect to your login).

Forms carry a CSRF token kept in Flask's signed session cookie and compared in constant time
(the same scheme as Flask-WTF, without the dependency); the app needs a ``secret_key``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from eki_whatsapp import Bot, EkiWhatsAppError
from eki_whatsapp.conversations import (
    ConversationSummary,
    e164,
    explain_error,
    history,
    list_conversations,
    media_refs,
)
from eki_whatsapp.messages import Template, Text
from eki_whatsapp.providers.base import ProviderError
from eki_whatsapp.store.base import LogEntry

__all__ = ["CSRF_FIELD", "console_blueprint"]

#: Form field (and session key) of the CSRF token.
CSRF_FIELD = "csrf_token"
_SESSION_KEY = "eki_console_csrf"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

Auth = Callable[[], "str | ResponseReturnValue | None"]

_TICKS = {
    "accepted": "🕓",
    "queued": "🕓",
    "sending": "🕓",
    "sent": "✓",
    "delivered": "✓✓",
    "read": "✓✓",
    "played": "✓✓",
    "failed": "✗",
    "undelivered": "✗",
}


#: The console's words in Spanish and Portuguese (English is the key). Small enough to keep here
#: rather than add a gettext toolchain to a four-page blueprint.
TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "WhatsApp console": "Consola de WhatsApp",
        "conversations": "conversaciones",
        "Name": "Nombre",
        "Number": "Número",
        "Provider": "Proveedor",
        "Last message": "Último mensaje",
        "Time": "Hora",
        "24-hour window": "Ventana de 24 horas",
        "Unanswered": "Sin responder",
        "State": "Estado",
        "Search": "Buscar",
        "Number (with or without +), name or text": "Número (con o sin +), nombre o texto",
        "No conversations.": "No hay conversaciones.",
        "open until": "abierta hasta",
        "closed": "cerrada",
        "opted out": "dado de baja",
        "human": "persona",
        "needs a person": "pide una persona",
        "bot": "bot",
        "to": "a",
        "24-hour window open until": "Ventana de 24 horas abierta hasta",
        "24-hour window closed: only a template can be sent": (
            "Ventana de 24 horas cerrada: solo se puede enviar una plantilla"
        ),
        "Asked for a person:": "Pidió una persona:",
        "Download": "Descargar",
        "raw log row": "fila del registro en bruto",
        "No messages yet.": "Aún no hay mensajes.",
        "Take over": "Tomar la conversación",
        "Hand back to the bot": "Devolver al bot",
        "Block": "Bloquear",
        "Unblock": "Desbloquear",
        "Write a reply": "Escribe una respuesta",
        "Send": "Enviar",
        "Send template": "Enviar plantilla",
        "No template configured": "No hay plantillas configuradas",
        "You have the conversation: the bot will not answer.": (
            "Tienes la conversación: el bot no responderá."
        ),
        "The bot answers this conversation again.": "El bot vuelve a responder esta conversación.",
        "Blocked: no message will be sent to this user.": (
            "Bloqueado: no se enviará ningún mensaje a este usuario."
        ),
        "Unblocked.": "Desbloqueado.",
        "Unknown template.": "Plantilla desconocida.",
        "Write a message first.": "Escribe un mensaje primero.",
        "Not sent:": "No se envió:",
        "Sent.": "Enviado.",
    },
    "pt": {
        "WhatsApp console": "Console do WhatsApp",
        "conversations": "conversas",
        "Name": "Nome",
        "Number": "Número",
        "Provider": "Provedor",
        "Last message": "Última mensagem",
        "Time": "Hora",
        "24-hour window": "Janela de 24 horas",
        "Unanswered": "Sem resposta",
        "State": "Estado",
        "Search": "Buscar",
        "Number (with or without +), name or text": "Número (com ou sem +), nome ou texto",
        "No conversations.": "Nenhuma conversa.",
        "open until": "aberta até",
        "closed": "fechada",
        "opted out": "descadastrado",
        "human": "pessoa",
        "needs a person": "pede uma pessoa",
        "bot": "bot",
        "to": "para",
        "24-hour window open until": "Janela de 24 horas aberta até",
        "24-hour window closed: only a template can be sent": (
            "Janela de 24 horas fechada: só é possível enviar um modelo"
        ),
        "Asked for a person:": "Pediu uma pessoa:",
        "Download": "Baixar",
        "raw log row": "linha bruta do registro",
        "No messages yet.": "Ainda não há mensagens.",
        "Take over": "Assumir a conversa",
        "Hand back to the bot": "Devolver ao bot",
        "Block": "Bloquear",
        "Unblock": "Desbloquear",
        "Write a reply": "Escreva uma resposta",
        "Send": "Enviar",
        "Send template": "Enviar modelo",
        "No template configured": "Nenhum modelo configurado",
        "You have the conversation: the bot will not answer.": "A conversa é sua: o bot não vai responder.",
        "The bot answers this conversation again.": "O bot volta a responder esta conversa.",
        "Blocked: no message will be sent to this user.": (
            "Bloqueado: nenhuma mensagem será enviada a este usuário."
        ),
        "Unblocked.": "Desbloqueado.",
        "Unknown template.": "Modelo desconhecido.",
        "Write a message first.": "Escreva uma mensagem primeiro.",
        "Not sent:": "Não enviado:",
        "Sent.": "Enviado.",
    },
}


def translator(language: str) -> Callable[[str], str]:
    """``t(text)`` in ``language`` (``es``, ``pt``; anything else: English)."""
    table = TEXTS.get(language.split("-")[0].lower(), {})
    return lambda text: table.get(text, text)


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def _check_csrf() -> None:
    expected = session.get(_SESSION_KEY)
    given = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        abort(400, description="CSRF token missing or wrong: reload the page and try again")


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime(TIME_FORMAT) + " UTC"


def console_blueprint(
    bot: Bot,
    *,
    auth: Auth | None = None,
    name: str = "eki_console",
    templates: Sequence[Template] = (),
    language: str = "es",
) -> Blueprint:
    """The console as a blueprint; mount it under a prefix of your choice.

    Args:
        bot: the bot whose conversations are shown (its store) and that sends staff replies.
        auth: **required**: returns the staff name, ``None`` (401) or a response (e.g. a redirect).
        name: the blueprint name.
        templates: templates offered when the 24-hour window is closed (the fallback template
            ``WHATSAPP_FALLBACK_TEMPLATE`` is added).
        language: language of the pages and error explanations (``es``, ``en``, ``pt``).

    Raises:
        TypeError: ``auth`` is missing: a console without authentication would let anyone read
            and write your customers' conversations.
    """
    if auth is None or not callable(auth):
        raise TypeError(
            "console_blueprint(bot, auth=...) needs an authentication callback that returns the staff "
            "name (or None to refuse): the console shows and sends customers' messages. See the "
            "minimal HTTP Basic example in the eki_whatsapp_flask.console docstring / docs/flask.md"
        )
    guard: Auth = auth
    t = translator(language)
    blueprint = Blueprint(name, __name__, template_folder="templates")
    offered = list(templates)
    fallback = bot.router.fallback_for("", None)
    if isinstance(fallback, Template) and all(t.name != fallback.name for t in offered):
        offered.append(fallback)

    @blueprint.before_request
    def _authenticate() -> ResponseReturnValue | None:
        result = guard()
        if result is None or result == "":
            return Response(
                "authentication required", 401, {"WWW-Authenticate": 'Basic realm="WhatsApp console"'}
            )
        if not isinstance(result, str):
            return result
        g.eki_staff = result
        if request.method == "POST":
            _check_csrf()
        return None

    @blueprint.context_processor
    def _context() -> dict[str, Any]:
        return {
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token,
            "e164": e164,
            "when": _when,
            "t": t,
            "language": language,
        }

    def find(user: str, business: str) -> ConversationSummary:
        for conversation in list_conversations(bot):
            if conversation.user == user and conversation.business == business:
                return conversation
        abort(404)

    @blueprint.get("/")
    def conversations() -> str:
        query = request.args.get("q", "")
        rows = list_conversations(bot, search=query or None)
        return render_template(
            "eki_console/list.html",
            rows=rows,
            query=query,
            now=datetime.now(timezone.utc),
            staff=g.eki_staff,
            bp=name,
        )

    @blueprint.get("/c/<user>/<business>/")
    def conversation(user: str, business: str) -> str:
        conv = find(user, business)
        rows = history(bot, user, business)
        bubbles = [_bubble(row, conv, name, language) for row in rows]
        return render_template(
            "eki_console/chat.html",
            c=conv,
            bubbles=bubbles,
            handoff=bot.handoff.state(user),
            optout=bot.optouts.state(user),
            window_open=conv.window_open(),
            window_until=_when(conv.window_until),
            templates=offered,
            messages=get_flashed_messages(with_categories=True),
            staff=g.eki_staff,
            bp=name,
        )

    @blueprint.post("/c/<user>/<business>/<action>")
    def act(user: str, business: str, action: str) -> ResponseReturnValue:
        conv = find(user, business)
        staff = g.eki_staff
        if action == "take":
            bot.handoff.take_over(user, staff=staff)
            flash(t("You have the conversation: the bot will not answer."), "success")
        elif action == "release":
            bot.handoff.hand_back(user, staff=staff)
            flash(t("The bot answers this conversation again."), "success")
        elif action == "block":
            bot.optouts.block(user, by=f"staff:{staff}")
            flash(t("Blocked: no message will be sent to this user."), "success")
        elif action == "unblock":
            bot.optouts.unblock(user)
            flash(t("Unblocked."), "success")
        elif action == "reply":
            _reply(bot, conv, staff, offered, language, t)
        else:
            abort(404)
        return redirect(url_for(f"{name}.conversation", user=user, business=business))

    @blueprint.get("/c/<user>/<business>/media/<int:log_id>/<int:index>")
    def media(user: str, business: str, log_id: int, index: int) -> ResponseReturnValue:
        """Media fetched by the server with the provider's credentials (never a provider URL)."""
        row = _row(bot, user, log_id)
        refs = media_refs(row)
        if row.direction != "in" or index >= len(refs):
            abort(404)
        provider = bot.providers.get(row.provider)
        if provider is None:
            abort(404)
        try:
            data = provider.download_media(refs[index])
        except ProviderError as exc:
            return Response(f"the provider did not give the file: {type(exc).__name__}", 502)
        mime = refs[index].mime_type or "application/octet-stream"
        inline = mime.startswith(("image/", "audio/", "video/")) and "svg" not in mime
        return Response(
            data,
            mimetype=mime,
            headers={
                "Content-Disposition": "inline"
                if inline
                else f'attachment; filename="whatsapp-{log_id}-{index}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
                "Cache-Control": "private, max-age=3600",
            },
        )

    @blueprint.get("/log/<user>/<int:log_id>")
    def log_row(user: str, log_id: int) -> ResponseReturnValue:
        row = _row(bot, user, log_id)
        statuses = bot.store.statuses(row.provider, row.message_id) if row.message_id else []
        return render_template(
            "eki_console/log.html",
            row=row,
            raw=json.dumps(row.raw, indent=2, ensure_ascii=False, default=str),
            extra=json.dumps(dict(row.extra), indent=2, ensure_ascii=False, default=str),
            statuses=statuses,
            staff=g.eki_staff,
            bp=name,
        )

    return blueprint


def _row(bot: Bot, user: str, log_id: int) -> LogEntry:
    for row in bot.store.list_log(user=user, limit=5000):
        if row.id == log_id:
            return row
    abort(404)


def _bubble(row: LogEntry, conv: ConversationSummary, bp: str, language: str) -> dict[str, Any]:
    extra = row.extra or {}
    error = None
    if row.status in ("failed", "undelivered") or row.error_code:
        error = explain_error(row.error_code, error=extra.get("error"), language=language, status=row.status)
    media = []
    for index, ref in enumerate(media_refs(row)):
        url = url_for(f"{bp}.media", user=conv.user, business=conv.business, log_id=row.id, index=index)
        mime = ref.mime_type or ""
        media.append(
            {"url": url, "label": ref.filename or mime or row.type, "image": mime.startswith("image/")}
        )
    return {
        "row": row,
        "outgoing": row.direction == "out",
        "time": _when(row.timestamp or row.created_at),
        "text": row.text or ("" if media else f"[{row.type}]"),
        "tick": _TICKS.get(row.status or "", "") if row.direction == "out" else "",
        "error": error,
        "staff": extra.get("staff"),
        "media": media,
        "log_url": url_for(f"{bp}.log_row", user=conv.user, log_id=row.id),
    }


def _reply(
    bot: Bot,
    conv: ConversationSummary,
    staff: str,
    offered: Sequence[Template],
    language: str,
    t: Callable[[str], str],
) -> None:
    text = (request.form.get("text") or "").strip()
    template_name = (request.form.get("template") or "").strip()
    message: Text | Template
    if template_name:
        chosen = [t for t in offered if t.name == template_name]
        if not chosen:
            flash(t("Unknown template."), "error")
            return
        message = chosen[0]
    elif text:
        message = Text(text)
    else:
        flash(t("Write a message first."), "error")
        return
    provider = conv.last_inbound_provider if conv.last_inbound_provider in bot.providers else None
    try:
        bot.handoff.reply(conv.user, message, staff=staff, provider=provider)
    except (ProviderError, EkiWhatsAppError) as exc:
        why = explain_error(
            getattr(exc, "code", None), error=type(exc).__name__, language=language, status="failed"
        )
        flash(f"{t('Not sent:')} {why or type(exc).__name__}", "error")
    else:
        flash(t("Sent."), "success")
