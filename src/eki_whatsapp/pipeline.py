"""The webhook pipeline: detect the provider, verify, parse, dedupe and log — then answer.

Each step is a small function; :func:`ingest` strings them together. Nothing here runs
handlers: the :class:`~eki_whatsapp.bot.Bot` does that after (or, inline, before) answering.

Detection: a GET with ``hub.*`` parameters is Meta's challenge; a JSON POST is Meta (or Twilio
when it carries ``X-Twilio-Signature`` and ``bodySHA256``); a form POST is Twilio. Anything else
gets a clear 4xx — never a 500.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from . import security
from .events import ChangeEvent, Event, InboundMessage, StatusUpdate
from .providers import meta_webhook, twilio_webhook
from .webhook import TWIML_EMPTY, WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from .bot import Bot

logger = logging.getLogger("eki_whatsapp.webhook")

_JSON_TYPES = ("application/json", "text/json")
_FORM_TYPE = "application/x-www-form-urlencoded"
_MAX_JSON_DEPTH_ERRORS = (ValueError, RecursionError, UnicodeDecodeError)
# Shared, so their headers are read-only views.
_META_OK = WebhookResponse(200, MappingProxyType({"Content-Type": "text/plain; charset=utf-8"}), b"OK")
_TWIML_OK = WebhookResponse(200, MappingProxyType(dict(WebhookResponse.twiml().headers)), TWIML_EMPTY)


@dataclass(slots=True)
class Ingested:
    """The answer to give and the new (not duplicate) events to hand to handlers."""

    response: WebhookResponse
    events: list[Event]
    provider: str | None = None


def reject(status: int, reason: str, *, provider: str | None = None, **headers: str) -> Ingested:
    logger.warning("webhook rejected with %s: %s", status, reason)
    response = WebhookResponse.text(status, reason)
    if headers:
        response = WebhookResponse(status, {**response.headers, **headers}, response.body)
    return Ingested(response, [], provider)


def ingest(bot: Bot, request: WebhookRequest) -> Ingested:
    """Run every step for one request."""
    settings = bot.settings
    if len(request.body) > settings.whatsapp_max_body_bytes:
        return reject(413, f"body larger than {settings.whatsapp_max_body_bytes} bytes")
    if request.method in ("GET", "HEAD"):
        if any(name.startswith("hub.") for name in request.query):
            return meta_challenge(bot, request)
        if twilio_webhook.is_twilio({k: v[0] for k, v in request.query.items() if v}):
            return twilio_get(bot, request)
        return reject(400, "GET without Meta hub.* verification parameters")
    if request.method != "POST":
        return reject(405, f"method {request.method} not allowed", Allow="GET, POST")
    ctype = request.content_type
    if not ctype:
        # Providers always send a content type; guess only from their signature headers.
        if request.headers.get("x-hub-signature-256"):
            ctype = "application/json"
        elif request.headers.get("x-twilio-signature"):
            ctype = _FORM_TYPE
    if ctype in _JSON_TYPES or ctype.endswith("+json"):
        if "x-twilio-signature" in request.headers and request.query_param("bodySHA256"):
            return twilio_json(bot, request)
        return meta_post(bot, request)
    if ctype == _FORM_TYPE:
        return twilio_form(bot, request)
    return reject(415, f"unsupported content type {ctype or '(none)'}: expected JSON (Meta) or form (Twilio)")


# --- Meta --------------------------------------------------------------------------------------
def meta_challenge(bot: Bot, request: WebhookRequest) -> Ingested:
    """Meta's subscription handshake (docs/wire.md §1)."""
    expected = bot.settings.meta_verify_token
    mode = request.query_param("hub.mode")
    challenge = request.query_param("hub.challenge")
    if expected is None:
        return reject(403, "verification refused: META_VERIFY_TOKEN is not set", provider="meta")
    if mode != "subscribe":
        return reject(403, f"verification refused: hub.mode is {mode!r}, not 'subscribe'", provider="meta")
    if not security.verify_token(expected.get_secret_value(), request.query_param("hub.verify_token")):
        return reject(
            403,
            "verification refused: hub.verify_token does not match META_VERIFY_TOKEN",
            provider="meta",
        )
    if challenge is None:
        return reject(400, "verification refused: hub.challenge is missing", provider="meta")
    logger.info("Meta webhook verified")
    return Ingested(WebhookResponse.text(200, challenge), [], "meta")


_warned_unsigned = False


def meta_post(bot: Bot, request: WebhookRequest) -> Ingested:
    """A Meta notification: signature over the raw bytes, then parse (docs/wire.md §2-3)."""
    global _warned_unsigned
    secret = bot.settings.meta_app_secret
    header = request.headers.get("x-hub-signature-256")
    if secret is not None:
        if not header:
            return reject(401, "missing X-Hub-Signature-256", provider="meta")
        if not security.verify_meta_signature(secret.get_secret_value(), request.body, header):
            return reject(
                403, "invalid X-Hub-Signature-256 (is META_APP_SECRET the app's secret?)", provider="meta"
            )
    elif not _warned_unsigned:
        _warned_unsigned = True
        logger.warning("META_APP_SECRET is not set: Meta webhook signatures are NOT checked")
    try:
        body = json.loads(request.body)
    except _MAX_JSON_DEPTH_ERRORS:
        return reject(400, "malformed JSON body", provider="meta")
    if not isinstance(body, dict):
        return reject(400, "JSON body is not an object", provider="meta")
    if "object" not in body and twilio_webhook.is_twilio(body):
        return reject(401, "Twilio JSON request without X-Twilio-Signature/bodySHA256", provider="twilio")
    try:
        events = meta_webhook.parse_body(body)
    except meta_webhook.PayloadError as exc:
        return reject(400, str(exc), provider="meta")
    return record(bot, events, _META_OK, "meta")


# --- Twilio ------------------------------------------------------------------------------------
def public_url(bot: Bot, request: WebhookRequest) -> str:
    """The URL Twilio signed: ``WHATSAPP_WEBHOOK_URL`` when set (plus the request's query), else
    the URL the app received."""
    configured = bot.settings.whatsapp_webhook_url
    if not configured:
        return request.url
    query = urlsplit(request.url).query
    if query and "?" not in configured:
        return f"{configured}?{query}"
    return configured


def _twilio_tokens(bot: Bot) -> list[str]:
    s = bot.settings
    return [t.get_secret_value() for t in (s.twilio_auth_token, s.twilio_auth_token_secondary) if t]


def _twilio_auth(bot: Bot, request: WebhookRequest, params: list[tuple[str, str]]) -> Ingested | None:
    tokens = _twilio_tokens(bot)
    if not tokens:
        return reject(
            403,
            "Twilio request refused: TWILIO_AUTH_TOKEN is not set, signatures cannot be checked",
            provider="twilio",
        )
    header = request.headers.get("x-twilio-signature")
    if not header:
        return reject(401, "missing X-Twilio-Signature", provider="twilio")
    if not security.verify_twilio_signature(tokens, public_url(bot, request), params, header):
        return reject(
            403,
            "invalid X-Twilio-Signature (behind a proxy? set WHATSAPP_WEBHOOK_URL to the URL "
            "configured in Twilio)",
            provider="twilio",
        )
    return None


def twilio_form(bot: Bot, request: WebhookRequest) -> Ingested:
    try:
        text = request.body.decode("utf-8")
        params = parse_qsl(text, keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        return reject(400, "malformed form body", provider="twilio")
    denied = _twilio_auth(bot, request, params)
    if denied is not None:
        return denied
    return _twilio_events(bot, dict(params))


def twilio_get(bot: Bot, request: WebhookRequest) -> Ingested:
    """Twilio configured with HTTP GET: parameters in the query, signature over the URL."""
    denied = _twilio_auth(bot, request, [])
    if denied is not None:
        return denied
    return _twilio_events(bot, {k: v[0] for k, v in request.query.items() if v})


def twilio_json(bot: Bot, request: WebhookRequest) -> Ingested:
    """Twilio JSON body: signature over the URL alone, plus ``bodySHA256`` (docs/wire.md §8)."""
    denied = _twilio_auth(bot, request, [])
    if denied is not None:
        return denied
    given = request.query_param("bodySHA256") or ""
    if not hmac.compare_digest(security.body_sha256(request.body), given.lower()):
        return reject(403, "bodySHA256 does not match the body", provider="twilio")
    try:
        body = json.loads(request.body)
    except _MAX_JSON_DEPTH_ERRORS:
        return reject(400, "malformed JSON body", provider="twilio")
    if not isinstance(body, dict):
        return reject(400, "JSON body is not an object", provider="twilio")
    return _twilio_events(bot, {str(k): _form_value(v) for k, v in body.items()})


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _twilio_events(bot: Bot, params: dict[str, str]) -> Ingested:
    try:
        events = twilio_webhook.parse_params(params)
    except twilio_webhook.PayloadError as exc:
        return reject(400, str(exc), provider="twilio")
    return record(bot, events, _TWIML_OK, "twilio")


# --- log + dedup ---------------------------------------------------------------------------------
def record(bot: Bot, events: list[Event], response: WebhookResponse, provider: str) -> Ingested:
    """Log every event before answering; keep only the ones not seen before."""
    store = bot.store
    fresh: list[Event] = []
    for event in events:
        if type(event) is StatusUpdate:  # the most frequent event first
            if store.record_status(event):
                fresh.append(event)
        elif isinstance(event, InboundMessage):
            if store.record_inbound(event):
                fresh.append(event)
            else:
                logger.info("duplicate %s message %s ignored", event.provider, event.id)
        elif isinstance(event, StatusUpdate):
            if store.record_status(event):
                fresh.append(event)
        elif isinstance(event, ChangeEvent):
            store.record_change(event)
            fresh.append(event)
    return Ingested(response, fresh, provider)
