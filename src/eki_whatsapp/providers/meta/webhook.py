"""Meta's webhook requests: recognise them, check the handshake and the signature, parse them.

* A GET with ``hub.*`` parameters is the subscription handshake (docs/wire.md §1): answer
  ``hub.challenge`` when ``hub.verify_token`` is ``META_VERIFY_TOKEN``.
* A JSON POST is a notification, signed with ``X-Hub-Signature-256`` = HMAC-SHA256 of the raw
  body with ``META_APP_SECRET`` (docs/wire.md §2); its body is parsed by
  :mod:`eki_whatsapp.providers.meta.parse` (docs/wire.md §3).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from types import MappingProxyType
from typing import TYPE_CHECKING

from ...webhook import WebhookRequest, WebhookResponse
from ..base import json_object, refuse
from . import parse as meta_parse

if TYPE_CHECKING:
    from ...events import Event
    from ...settings import Settings

__all__ = ["MetaWebhook", "meta_signature", "verify_meta_signature", "verify_token"]

logger = logging.getLogger("eki_whatsapp.webhook")

SIGNATURE_HEADER = "x-hub-signature-256"
_JSON_TYPES = ("application/json", "text/json")
# Shared, so its headers are a read-only view.
_OK = WebhookResponse(200, MappingProxyType({"Content-Type": "text/plain; charset=utf-8"}), b"OK")


def meta_signature(app_secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_meta_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Check ``X-Hub-Signature-256`` over the exact bytes received (constant time)."""
    if not header:
        return False
    given = header.strip()
    if given[:7].lower() != "sha256=":
        return False
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")
    return hmac.compare_digest(expected, given[7:].lower().encode("utf-8", "replace"))


def verify_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of Meta's ``hub.verify_token``."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def is_json(content_type: str) -> bool:
    return content_type in _JSON_TYPES or content_type.endswith("+json")


def is_handshake(request: WebhookRequest) -> bool:
    return request.method in ("GET", "HEAD") and any(name.startswith("hub.") for name in request.query)


class MetaWebhook:
    """The :class:`~eki_whatsapp.providers.base.WebhookReader` of Meta's Cloud API webhooks.

    Reads ``META_VERIFY_TOKEN`` and ``META_APP_SECRET`` from ``settings``. Without an app secret
    notifications are accepted unsigned (a warning is logged once) — except with
    ``WHATSAPP_ENV=production``, where they are refused (403).
    """

    name = "meta"
    ack = _OK

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._warned_unsigned = False

    def detect(self, request: WebhookRequest) -> bool:
        if request.method != "POST":
            return is_handshake(request)
        ctype = request.content_type
        # Meta always sends a content type; without one, trust only its signature header.
        return is_json(ctype) or (not ctype and SIGNATURE_HEADER in request.headers)

    def verify(self, request: WebhookRequest) -> WebhookResponse | None:
        if request.method != "POST":
            return self.handshake(request)
        secret = self.settings.meta_app_secret
        header = request.headers.get(SIGNATURE_HEADER)
        if secret is not None:
            if not header:
                return refuse(401, "missing X-Hub-Signature-256")
            if not verify_meta_signature(secret.get_secret_value(), request.body, header):
                return refuse(403, "invalid X-Hub-Signature-256 (is META_APP_SECRET the app's secret?)")
        elif self.settings.whatsapp_env == "production":  # e.g. WHATSAPP_PROVIDER=twilio
            return refuse(
                403,
                "Meta request refused: META_APP_SECRET is not set and WHATSAPP_ENV=production "
                "accepts no unsigned post (set it to receive Meta webhooks)",
            )
        elif not self._warned_unsigned:
            self._warned_unsigned = True
            logger.warning("META_APP_SECRET is not set: Meta webhook signatures are NOT checked")
        return None

    def handshake(self, request: WebhookRequest) -> WebhookResponse:
        """Meta's subscription handshake (docs/wire.md §1): echo ``hub.challenge``."""
        expected = self.settings.meta_verify_token
        mode = request.query_param("hub.mode")
        challenge = request.query_param("hub.challenge")
        if expected is None:
            return refuse(403, "verification refused: META_VERIFY_TOKEN is not set")
        if mode != "subscribe":
            return refuse(403, f"verification refused: hub.mode is {mode!r}, not 'subscribe'")
        if not verify_token(expected.get_secret_value(), request.query_param("hub.verify_token")):
            return refuse(403, "verification refused: hub.verify_token does not match META_VERIFY_TOKEN")
        if challenge is None:
            return refuse(400, "verification refused: hub.challenge is missing")
        logger.info("Meta webhook verified")
        return WebhookResponse.text(200, challenge)

    def parse(self, request: WebhookRequest) -> list[Event]:
        return meta_parse.parse_body(json_object(request.body))

    def __repr__(self) -> str:
        return "MetaWebhook()"
