"""Twilio's webhook requests: recognise them, check ``X-Twilio-Signature``, parse them.

Twilio calls the webhook three ways (docs/wire.md §7, §8):

* a form POST (the default): the signature is over the URL plus the sorted form parameters;
* a GET (when configured so): parameters in the query, the signature over the URL alone;
* a JSON POST: the signature over the URL alone, whose ``bodySHA256`` query parameter is the
  hex SHA-256 of the body.

The URL is the public one Twilio called: ``WHATSAPP_WEBHOOK_URL`` when set (behind proxies and
tunnels), else the URL the app received; with and without the default port, since Twilio may
sign either. Every configured auth token is tried (``TWILIO_AUTH_TOKEN`` and
``TWILIO_AUTH_TOKEN_SECONDARY`` while rotating).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ...webhook import TWIML_EMPTY, WebhookRequest, WebhookResponse
from ..base import PayloadError, json_object, refuse
from . import parse as twilio_parse
from .parse import is_twilio

if TYPE_CHECKING:
    from ...events import Event
    from ...settings import Settings

__all__ = [
    "TwilioWebhook",
    "body_sha256",
    "public_url",
    "twilio_signature",
    "url_variants",
    "verify_twilio_signature",
]

SIGNATURE_HEADER = "x-twilio-signature"
_FORM_TYPE = "application/x-www-form-urlencoded"
_JSON_TYPES = ("application/json", "text/json")
# Shared, so its headers are a read-only view.
_TWIML_OK = WebhookResponse(200, MappingProxyType(dict(WebhookResponse.twiml().headers)), TWIML_EMPTY)


# --- signatures ----------------------------------------------------------------------------------
def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The ``X-Twilio-Signature`` Twilio computes for a request to ``url`` with form ``params``.

    Params are sorted by name (then value) and appended as ``name + value``; for GET requests and
    JSON bodies pass no params.
    """
    data = url
    for name, value in sorted(set(params)):
        data += name + value
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None or parts.hostname is None:
        return url
    port = 443 if parts.scheme == "https" else 80
    netloc = parts.netloc + f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None or parts.hostname is None:
        return url
    default = 443 if parts.scheme == "https" else 80
    if parts.port != default:
        return url
    netloc = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def url_variants(url: str) -> list[str]:
    """The URL as given, with the default port and without it (Twilio may sign either)."""
    url = url.split("#", 1)[0]
    out = [url]
    for variant in (_with_port(url), _without_port(url)):
        if variant not in out:
            out.append(variant)
    return out


def verify_twilio_signature(
    auth_tokens: Sequence[str],
    url: str,
    params: Iterable[tuple[str, str]],
    header: str | None,
) -> bool:
    """Check ``X-Twilio-Signature`` against every token (rotation) and URL port variant."""
    if not header:
        return False
    given = header.strip().encode("utf-8", "replace")
    params = list(params)
    ok = False
    for token in auth_tokens:
        for candidate in url_variants(url):
            expected = twilio_signature(token, candidate, params).encode("ascii")
            # keep comparing after a match so timing does not depend on which variant matched
            ok |= hmac.compare_digest(expected, given)
    return ok


def body_sha256(body: bytes) -> str:
    """Hex SHA-256 of a body, as Twilio puts in ``bodySHA256`` for JSON requests."""
    return hashlib.sha256(body).hexdigest()


def public_url(configured: str | None, request: WebhookRequest) -> str:
    """The URL Twilio signed: ``configured`` (``WHATSAPP_WEBHOOK_URL``) when set, plus the
    request's query; else the URL the app received."""
    if not configured:
        return request.url
    query = urlsplit(request.url).query
    if query and "?" not in configured:
        return f"{configured}?{query}"
    return configured


# --- the reader ------------------------------------------------------------------------------------
def _query_params(request: WebhookRequest) -> dict[str, str]:
    return {k: v[0] for k, v in request.query.items() if v}


def _is_json(content_type: str) -> bool:
    return content_type in _JSON_TYPES or content_type.endswith("+json")


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


class TwilioWebhook:
    """The :class:`~eki_whatsapp.providers.base.WebhookReader` of Twilio's WhatsApp webhooks.

    Reads ``TWILIO_AUTH_TOKEN`` (and ``TWILIO_AUTH_TOKEN_SECONDARY``) and ``WHATSAPP_WEBHOOK_URL``
    from ``settings``. Without an auth token every Twilio request is refused: Twilio always signs.
    """

    name = "twilio"
    ack = _TWIML_OK

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- detect ------------------------------------------------------------------------------
    def detect(self, request: WebhookRequest) -> bool:
        if request.method != "POST":
            return request.method in ("GET", "HEAD") and is_twilio(_query_params(request))
        ctype = request.content_type
        signed = SIGNATURE_HEADER in request.headers
        if ctype == _FORM_TYPE or (not ctype and signed):  # Twilio always sends a content type
            return True
        if _is_json(ctype):
            # Twilio signs JSON over the URL alone and adds the body's hash to it
            return signed and bool(request.query_param("bodySHA256"))
        return False

    # --- verify ------------------------------------------------------------------------------
    def _tokens(self) -> list[str]:
        s = self.settings
        return [t.get_secret_value() for t in (s.twilio_auth_token, s.twilio_auth_token_secondary) if t]

    def _check(self, request: WebhookRequest, params: list[tuple[str, str]]) -> WebhookResponse | None:
        tokens = self._tokens()
        if not tokens:
            return refuse(
                403, "Twilio request refused: TWILIO_AUTH_TOKEN is not set, signatures cannot be checked"
            )
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            return refuse(401, "missing X-Twilio-Signature")
        url = public_url(self.settings.whatsapp_webhook_url, request)
        if not verify_twilio_signature(tokens, url, params, header):
            return refuse(
                403,
                "invalid X-Twilio-Signature (behind a proxy? set WHATSAPP_WEBHOOK_URL to the URL "
                "configured in Twilio)",
            )
        return None

    def verify(self, request: WebhookRequest) -> WebhookResponse | None:
        if request.method != "POST":
            return self._check(request, [])
        if _is_json(request.content_type):
            denied = self._check(request, [])
            if denied is not None:
                return denied
            given = request.query_param("bodySHA256") or ""
            if not hmac.compare_digest(body_sha256(request.body), given.lower()):
                return refuse(403, "bodySHA256 does not match the body")
            return None
        try:
            params = self._form(request)
        except PayloadError as exc:
            return refuse(400, str(exc))
        return self._check(request, params)

    # --- parse -------------------------------------------------------------------------------
    def parse(self, request: WebhookRequest) -> list[Event]:
        if request.method != "POST":
            params = _query_params(request)
        elif _is_json(request.content_type):
            try:
                params = {str(k): _form_value(v) for k, v in json_object(request.body).items()}
            except RecursionError:  # a value nested too deeply to write back as text
                raise PayloadError("malformed JSON body") from None
        else:
            params = dict(self._form(request))
            # A status callback URL may carry the router's correlation key in its query.
            ref = request.query_param(twilio_parse.CORRELATION_PARAM)
            if ref:
                params.setdefault(twilio_parse.CORRELATION_PARAM, ref)
        return twilio_parse.parse_params(params)

    @staticmethod
    def _form(request: WebhookRequest) -> list[tuple[str, str]]:
        try:
            return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
        except (UnicodeDecodeError, ValueError):
            raise PayloadError("malformed form body") from None

    def __repr__(self) -> str:
        return "TwilioWebhook()"
