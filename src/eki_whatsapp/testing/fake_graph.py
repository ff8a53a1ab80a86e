"""A fake Meta Graph API (WhatsApp Cloud API) on 127.0.0.1 (docs/wire.md §4, §5)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ._errors import meta_code_and_status, meta_error_body
from ._fake import SentMessage, json_reply, media_reply
from ._fake_graph_templates import GraphTemplates
from ._fake_rules import normalize_address
from ._http import RawRequest, Reply
from .payloads import (
    DEFAULT_DISPLAY_PHONE_NUMBER,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_WABA_ID,
    Payload,
    meta_status,
    new_wamid,
)

__all__ = ["FakeGraphAPI", "StoredMedia"]

_PATH = re.compile(r"^/(?:(v\d+\.\d+)/)?([^/]+)(?:/([^/]+))?/?$")
_OAUTH_CHALLENGE = 'OAuth "Facebook Platform" "invalid_token"'
_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """Media held by the fake (uploaded by the bot, or added with :meth:`FakeGraphAPI.add_media`)."""

    id: str
    data: bytes
    mime_type: str
    filename: str | None = None

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the content, as the Graph API reports it."""
        return hashlib.sha256(self.data).hexdigest()


class FakeGraphAPI(GraphTemplates):
    """A fake WhatsApp Cloud API: a real HTTP server on 127.0.0.1 speaking the Graph API's shapes.

    Put ``.base_url`` in ``META_GRAPH_BASE_URL`` and ``.token`` in ``META_WHATSAPP_TOKEN``::

        with FakeGraphAPI(app_secret="s3cret", webhook_url=server.url) as graph:
            settings = Settings(_env_file=None, whatsapp_provider="meta", **graph.settings_fields())
            ...
            graph.flush()                     # every status webhook posted
            assert graph.sent[0].text == "Hola"

    Endpoints: ``POST /{version}/{phone-number-id}/messages`` (messages, mark-as-read, typing),
    ``POST /{version}/{phone-number-id}/media`` (multipart upload), ``GET``/``DELETE
    /{version}/{media-id}``, the media download URL it hands out (Bearer), ``GET
    /{version}/{phone-number-id}`` (phone-number lookup), ``GET``/``POST``/``DELETE
    /{version}/{waba-id}/subscribed_apps`` and ``GET /{version}/{app-id}/subscriptions``.
    Every request needs ``Authorization: Bearer <token>``: none → 400 code 104, wrong → 401
    code 190, ``token_expired = True`` → 401 code 190 subcode 463.

    After a message is accepted, statuses ``auto_status`` are posted to ``webhook_url``, signed
    with ``app_secret`` when set (unsigned otherwise), in Meta's shape (pricing: ``service`` /
    ``free_customer_service`` for free-form messages, ``template_category`` for templates).
    """

    provider = "meta"
    window_code = 131047

    def __init__(
        self,
        *,
        token: str = "fake-meta-token",  # noqa: S107 - a test fixture, not a credential
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
        waba_id: str = DEFAULT_WABA_ID,
        app_id: str = "1234567890123456",
        app_secret: str | None = None,
        webhook_url: str | None = None,
        auto_status: Sequence[str] = ("sent", "delivered", "read"),
        template_category: str = "utility",
        verified_name: str = "Eki Test",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.display_phone_number = display_phone_number
        self.waba_id = waba_id
        self.app_id = app_id
        self.app_secret = app_secret
        self.template_category = template_category
        self.verified_name = verified_name
        #: 401 code 190 subcode 463 for every request: a temporary token past its 24 hours.
        self.token_expired = False
        #: ``code_verification_status`` of the phone-number lookup (``False``: ``NOT_VERIFIED``).
        self.phone_verified = True
        #: ``platform_type`` of the phone-number lookup (``NOT_APPLICABLE``: not registered).
        self.platform_type = "CLOUD_API"
        #: Whether the app is subscribed to the WABA (``GET/POST /{waba-id}/subscribed_apps``).
        self.app_subscribed = True
        #: Webhook fields the app is subscribed to (``GET /{app-id}/subscriptions``).
        self.subscribed_fields: list[str] = ["messages"]
        #: ``(message_id, typing)`` of every mark-as-read request.
        self.read_receipts: list[tuple[str, bool]] = []
        self.media: dict[str, StoredMedia] = {}
        #: Message templates by id (``POST/GET /{waba-id}/message_templates``, ``POST /{id}``).
        self.templates: dict[str, dict[str, Any]] = {}
        super().__init__(webhook_url=webhook_url, auto_status=auto_status, host=host, port=port)

    # --- configuration helpers ------------------------------------------------------------------
    def settings_fields(self) -> dict[str, str]:
        """``Settings`` keyword arguments pointing a bot at this fake (lower-case env names)."""
        fields = {
            "meta_graph_base_url": self.base_url,
            "meta_whatsapp_token": self.token,
            "meta_phone_number_id": self.phone_number_id,
            "meta_business_account_id": self.waba_id,
        }
        if self.app_secret is not None:
            fields["meta_app_secret"] = self.app_secret
        return fields

    def env(self) -> dict[str, str]:
        """The same as environment variables (``META_GRAPH_BASE_URL=…``), e.g. for a ``.env``."""
        return {name.upper(): value for name, value in self.settings_fields().items()}

    def add_media(self, data: bytes, mime_type: str = "image/jpeg", *, filename: str | None = None) -> str:
        """Store media as if a user had sent it; returns its media id (for ``meta_image(id)``)."""
        media_id = str(secrets.randbelow(9 * 10**15) + 10**15)
        with self._state:
            self.media[media_id] = StoredMedia(media_id, data, mime_type, filename)
        return media_id

    @property
    def messages_url(self) -> str:
        """``{base_url}/v26.0/{phone_number_id}/messages``."""
        return f"{self.base_url}/v26.0/{self.phone_number_id}/messages"

    # --- FakeProviderAPI hooks -------------------------------------------------------------------
    def _error_reply(self, code: int | None, http_status: int | None, message: str | None) -> Reply:
        code, http_status = meta_code_and_status(code, http_status)
        headers = {"WWW-Authenticate": _OAUTH_CHALLENGE} if http_status == 401 else {}
        return json_reply(http_status, meta_error_body(code, message), headers)

    def _outage_reply(self) -> Reply:
        return json_reply(503, meta_error_body(2, "(#2) Service temporarily unavailable"))

    def _status_payload(self, message: SentMessage, status: str, error_code: int | None) -> Payload:
        category = self.template_category if message.is_template else "service"
        return meta_status(
            message.id,
            status,
            recipient=message.to if normalize_address(message.to).isdigit() else None,
            recipient_user_id=None if normalize_address(message.to).isdigit() else message.to,
            category=category,
            error_code=error_code,
            callback_data=message.body.get("biz_opaque_callback_data"),
            phone_number_id=self.phone_number_id,
            display_phone_number=self.display_phone_number,
            waba_id=self.waba_id,
        )

    def _status_target(self, message: SentMessage) -> tuple[str | None, str | None]:
        return self.webhook_url, self.app_secret

    # --- routing -------------------------------------------------------------------------------
    def _route(self, request: RawRequest) -> Reply:
        if request.path.startswith("/media-download/"):
            return self._download(request)
        match = _PATH.match(request.path)
        if match is None:
            return self._error_reply(100, 400, f"Unknown path components: {request.path}")
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        _, node, edge = match.groups()
        method = request.method
        if edge is None:
            if method == "GET":
                return self._get_node(request, node)
            if method == "DELETE":
                return self._delete_media(node)
            if method == "POST" and node in self.templates:
                return self._edit_template(request, node)
        elif node == self.phone_number_id and method == "POST" and edge == "messages":
            return self._messages(request)
        elif node == self.phone_number_id and method == "POST" and edge == "media":
            return self._upload(request)
        elif node == self.app_id and method == "GET" and edge == "subscriptions":
            return self._subscriptions()
        elif node == self.waba_id and edge == "subscribed_apps" and method in ("GET", "POST", "DELETE"):
            return self._subscribed_apps(method)
        elif node == self.waba_id and edge == "message_templates" and method in ("GET", "POST"):
            return self._create_template(request) if method == "POST" else self._list_templates(request)
        return self._unsupported(method.lower(), node)

    def _unsupported(self, method: str, node: str) -> Reply:
        message = (
            f"Unsupported {method} request. Object with ID '{node}' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation."
        )
        return json_reply(400, {"error": {**meta_error_body(100, message)["error"], "error_subcode": 33}})

    def _check_auth(self, request: RawRequest) -> Reply | None:
        header = request.header("authorization") or ""
        given = header[7:].strip() if header[:7].lower() == "bearer " else None
        if given is None:
            given = request.query_params.get("access_token")
        if not given:
            return self._error_reply(104, 400, None)
        if not hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8")):
            return self._error_reply(190, 401, "Invalid OAuth access token - Cannot parse access token")
        if self.token_expired:
            body = meta_error_body(
                190,
                "Error validating access token: Session has expired on Tuesday, 24-Nov-26 10:00:00 PST. "
                "The current time is Wednesday, 25-Nov-26 02:00:00 PST.",
                subcode=463,
            )
            return json_reply(401, body, {"WWW-Authenticate": _OAUTH_CHALLENGE})
        return None

    def _messages(self, request: RawRequest) -> Reply:
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return self._error_reply(100, 400, "(#100) The request body is not valid JSON.")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return self._error_reply(100, 400, "(#100) The parameter messaging_product is required.")
        if body.get("status") == "read":
            message_id = body.get("message_id")
            if not isinstance(message_id, str) or not message_id:
                return self._error_reply(100, 400, "(#100) The parameter message_id is required.")
            typing = isinstance(body.get("typing_indicator"), dict)
            with self._state:
                self.read_receipts.append((message_id, typing))
            return json_reply(200, {"success": True})
        to = body.get("to") or body.get("recipient")
        if not isinstance(to, str) or not to.strip():
            return self._error_reply(131008, 400, "(#131008) Required parameter is missing: 'to'")
        kind = body.get("type", "text")
        if not isinstance(kind, str) or not isinstance(body.get(kind), (dict, list)):
            return self._error_reply(131008, 400, f"(#131008) Required parameter is missing: '{kind}'")
        problem = _validate(kind, body[kind])
        if problem is not None:
            return self._error_reply(100, 400, f"(#100) {problem}")
        if kind == "template":
            refusal = self._template_refusal(body[kind])
            if refusal is not None:
                return refusal
        if normalize_address(to) == self.display_phone_number:
            return self._error_reply(131021, None, None)
        failure = self._take_failure(normalize_address(to))
        if failure is not None:
            return failure
        message = SentMessage("meta", new_wamid(), to, kind, _text_of(kind, body[kind]), body)
        after = self._accept(message)
        contact: dict[str, str] = {"input": to}
        if normalize_address(to).isdigit():
            contact["wa_id"] = normalize_address(to)
        else:
            contact["user_id"] = to
        sent: dict[str, str] = {"id": message.id}
        if kind == "template":
            sent["message_status"] = "accepted"
        answer = {"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]}
        reply = json_reply(200, answer)
        reply.after = after
        return reply

    def _upload(self, request: RawRequest) -> Reply:
        fields = _multipart(request)
        if fields is None:
            return self._error_reply(100, 400, "(#100) The request must be multipart/form-data.")
        if fields.get("messaging_product", (b"", None, None))[0] != b"whatsapp":
            return self._error_reply(100, 400, "(#100) The parameter messaging_product is required.")
        if "file" not in fields:
            return self._error_reply(100, 400, "(#100) The parameter file is required.")
        data, filename, part_type = fields["file"]
        declared = fields.get("type", (b"", None, None))[0].decode("utf-8", "replace")
        mime = declared or part_type or "application/octet-stream"
        media_id = self.add_media(data, mime, filename=filename)
        return json_reply(200, {"id": media_id})

    def _get_node(self, request: RawRequest, node: str) -> Reply:
        if node == self.phone_number_id:
            return json_reply(200, self._phone_number())
        if node == self.waba_id:
            return json_reply(200, {"id": self.waba_id, "name": self.verified_name, "currency": "USD"})
        with self._state:
            media = self.media.get(node)
        if media is None:
            return self._unsupported("get", node)
        url = f"{self.base_url}/media-download/{quote(media.id)}?mid={media.id}&hash={secrets.token_hex(8)}"
        return json_reply(
            200,
            {
                "messaging_product": "whatsapp",
                "url": url,
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": len(media.data),
                "id": media.id,
            },
        )

    def _phone_number(self) -> dict[str, Any]:
        digits = self.display_phone_number
        return {
            "verified_name": self.verified_name,
            "code_verification_status": "VERIFIED" if self.phone_verified else "NOT_VERIFIED",
            "display_phone_number": f"+{digits[:1]} {digits[1:4]}-{digits[4:7]}-{digits[7:]}",
            "quality_rating": "GREEN",
            "platform_type": self.platform_type,
            "throughput": {"level": "STANDARD"},
            "id": self.phone_number_id,
        }

    def _subscriptions(self) -> Reply:
        fields = [{"name": name, "version": "v26.0"} for name in self.subscribed_fields]
        data = {
            "object": "whatsapp_business_account",
            "callback_url": self.webhook_url or "",
            "active": bool(self.subscribed_fields),
            "fields": fields,
        }
        return json_reply(200, {"data": [data] if self.subscribed_fields else []})

    def _subscribed_apps(self, method: str) -> Reply:
        if method != "GET":
            self.app_subscribed = method == "POST"
            return json_reply(200, {"success": True})
        app = {
            "whatsapp_business_api_data": {
                "id": self.app_id,
                "link": "https://www.example.com/",
                "name": self.verified_name,
            }
        }
        return json_reply(200, {"data": [app] if self.app_subscribed else []})

    def _delete_media(self, node: str) -> Reply:
        with self._state:
            media = self.media.pop(node, None)
        if media is None:
            return self._unsupported("delete", node)
        return json_reply(200, {"success": True})

    def _download(self, request: RawRequest) -> Reply:
        denied = self._check_auth(request)
        if denied is not None:
            # lookaside answers 401 with an HTML-ish body; the status is what clients check
            return Reply(401, {"Content-Type": "text/plain"}, b"Unauthorized")
        with self._state:
            media = self.media.get(request.path.rsplit("/", 1)[-1])
        return media_reply(None if media is None else (media.mime_type, media.data))


# --- request checks ---------------------------------------------------------------------------
def _text_of(kind: str, obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    if kind == "text":
        body = obj.get("body")
        return body if isinstance(body, str) else None
    if kind in _MEDIA_TYPES:
        caption = obj.get("caption")
        return caption if isinstance(caption, str) else None
    if kind == "interactive":
        body = obj.get("body")
        text = body.get("text") if isinstance(body, dict) else None
        return text if isinstance(text, str) else None
    if kind == "template":
        name = obj.get("name")
        return f"template:{name}" if isinstance(name, str) else None
    return None


def _validate(kind: str, obj: Any) -> str | None:
    """The Graph API's parameter errors for the limits of docs/wire.md §4 (``None`` when valid)."""
    if kind == "text":
        body = obj.get("body") if isinstance(obj, dict) else None
        if not isinstance(body, str) or not body:
            return "The parameter text['body'] is required."
        if len(body) > 4096:
            return "Param text['body'] must be at most 4096 characters long."
    elif kind in _MEDIA_TYPES:
        if not isinstance(obj, dict) or ("id" in obj) == ("link" in obj):
            return f"Exactly one of {kind}['id'] or {kind}['link'] is required."
        caption = obj.get("caption")
        if isinstance(caption, str) and len(caption) > 1024:
            return f"Param {kind}['caption'] must be at most 1024 characters long."
    elif kind == "interactive" and isinstance(obj, dict) and obj.get("type") == "button":
        action = obj.get("action")
        buttons = action.get("buttons") if isinstance(action, dict) else None
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return "Param interactive['action']['buttons'] must have between 1 and 3 elements."
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            title = reply.get("title") if isinstance(reply, dict) else None
            if not isinstance(title, str) or not 1 <= len(title) <= 20:
                return "Param interactive['action']['buttons'][]['reply']['title'] must be 1-20 characters."
    elif kind == "interactive" and isinstance(obj, dict) and obj.get("type") == "cta_url":
        parameters = _get(_get(obj, "action"), "parameters")
        text = _get(parameters, "display_text")
        if not isinstance(text, str) or not 1 <= len(text) <= 20 or not _get(parameters, "url"):
            return "Param interactive['action']['parameters'] needs display_text (1-20) and url."
    elif kind == "interactive" and isinstance(obj, dict) and obj.get("type") == "flow":
        parameters = _get(_get(obj, "action"), "parameters")
        if not _get(parameters, "flow_cta") or not (
            _get(parameters, "flow_id") or _get(parameters, "flow_name")
        ):
            return "Param interactive['action']['parameters'] needs flow_cta and flow_id or flow_name."
    elif kind == "interactive" and isinstance(obj, dict) and obj.get("type") == "product_list":
        sections = _get(_get(obj, "action"), "sections")
        items = (
            sum(len(_get(s, "product_items") or ()) for s in sections) if isinstance(sections, list) else 0
        )
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10 or not 1 <= items <= 30:
            return "Param interactive['action']['sections'] must have 1-10 sections and 1-30 products."
    elif kind == "contacts" and (not isinstance(obj, list) or not obj):
        return "Param contacts must be a non-empty array."
    elif kind == "template" and (
        not isinstance(obj, dict) or not obj.get("name") or not isinstance(obj.get("language"), dict)
    ):
        return "The parameters template['name'] and template['language'] are required."
    return None


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _multipart(request: RawRequest) -> dict[str, tuple[bytes, str | None, str | None]] | None:
    """``name → (data, filename, content type)`` of a ``multipart/form-data`` body."""
    ctype = request.header("content-type") or ""
    if not ctype.lower().startswith("multipart/form-data"):
        return None
    boundary = None
    for param in ctype.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        return None
    out: dict[str, tuple[bytes, str | None, str | None]] = {}
    for part in request.body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        head, _, data = part.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        name = filename = part_type = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                for item in value.split(";")[1:]:
                    k, _, v = item.strip().partition("=")
                    if k == "name":
                        name = v.strip('"')
                    elif k == "filename":
                        filename = v.strip('"')
            elif key.strip().lower() == "content-type":
                part_type = value.strip()
        if name:
            out[name] = (data, filename, part_type)
    return out
