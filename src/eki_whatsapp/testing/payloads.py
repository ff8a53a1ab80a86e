"""Builders for inbound webhook payloads of both providers, byte-exact and signed.

Meta bodies are JSON serialised the way Meta does it (compact, non-ASCII escaped as ``\\uXXXX``),
Twilio bodies are form-urlencoded in the parameter order Twilio uses (docs/wire.md §3, §7). Every
builder returns a :class:`Payload`, which can be signed, turned into a
:class:`~eki_whatsapp.WebhookRequest`, or posted to a running webhook::

    from eki_whatsapp.testing import meta_text, twilio_text

    response = bot.handle(meta_text("Hola").request(secret="app-secret"))
    twilio_text("Hola").post("http://127.0.0.1:8000/webhook", secret="twilio-auth-token")
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from typing_extensions import TypedDict, Unpack

from ..addresses import normalize
from ..providers.meta.webhook import meta_signature
from ..providers.twilio.webhook import twilio_signature
from ..webhook import WebhookRequest
from ._errors import TWILIO_ERRORS, meta_webhook_error

__all__ = [
    "DEFAULT_DISPLAY_PHONE_NUMBER",
    "DEFAULT_META_USER",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_TWILIO_ACCOUNT_SID",
    "DEFAULT_TWILIO_NUMBER",
    "DEFAULT_TWILIO_USER",
    "DEFAULT_WABA_ID",
    "MetaOptions",
    "Payload",
    "TwilioOptions",
    "meta_audio",
    "meta_batch",
    "meta_button",
    "meta_button_reply",
    "meta_change",
    "meta_contacts",
    "meta_document",
    "meta_image",
    "meta_list_reply",
    "meta_location",
    "meta_message",
    "meta_order",
    "meta_reaction",
    "meta_status",
    "meta_sticker",
    "meta_system",
    "meta_text",
    "meta_unsupported",
    "meta_video",
    "new_message_sid",
    "new_wamid",
    "twilio_button",
    "twilio_list_reply",
    "twilio_location",
    "twilio_media",
    "twilio_message",
    "twilio_status",
    "twilio_text",
]

DEFAULT_WABA_ID = "102290129340398"
DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550783881"
DEFAULT_META_USER = "16505551234"
DEFAULT_META_NAME = "Sheena Nelson"
DEFAULT_TWILIO_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
DEFAULT_TWILIO_NUMBER = "+14155238886"
DEFAULT_TWILIO_USER = "5511987654321"
DEFAULT_TWILIO_NAME = "José"
DEFAULT_WEBHOOK_URL = "https://bot.example.com/webhook"

_META_CONTENT_TYPE = "application/json"
_TWILIO_CONTENT_TYPE = "application/x-www-form-urlencoded"


def new_wamid() -> str:
    """A fresh, unique Meta message id shaped like a real one (``wamid.HBgL…``)."""
    return "wamid.HBgL" + secrets.token_urlsafe(36).replace("-", "A").replace("_", "B") + "="


def new_message_sid(prefix: str = "SM") -> str:
    """A fresh Twilio sid: a two-letter prefix and 32 hex digits (``SM…``, ``MM…``, ``ME…``)."""
    return prefix + secrets.token_hex(16)


def meta_json(obj: Any) -> bytes:
    """Serialise like Meta: compact separators, non-ASCII escaped as lowercase ``\\uXXXX``."""
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


# --------------------------------------------------------------------------------------------
# Payload
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Payload:
    """The exact bytes a provider would POST to your webhook, plus how to sign and send them.

    Attributes:
        provider: ``"meta"`` or ``"twilio"``.
        body: the raw body bytes (what signatures are computed over).
        content_type: ``application/json`` (Meta) or ``application/x-www-form-urlencoded`` (Twilio).
        params: the decoded form parameters, in wire order (Twilio only).
    """

    provider: Literal["meta", "twilio"]
    body: bytes
    content_type: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def data(self) -> dict[str, Any]:
        """The decoded body: the JSON object (Meta) or the parameters as a dict (Twilio)."""
        if self.provider == "meta":
            decoded = json.loads(self.body)
            assert isinstance(decoded, dict)
            return decoded
        return dict(self.params)

    @property
    def message_id(self) -> str | None:
        """The id of the first message or status in the payload (wamid / MessageSid)."""
        if self.provider == "twilio":
            return dict(self.params).get("MessageSid")
        for entry in self.data.get("entry", []):
            for change in entry.get("changes", []):
                value = change.get("value") or {}
                for key in ("messages", "statuses"):
                    for item in value.get(key) or []:
                        if isinstance(item, dict) and item.get("id"):
                            return str(item["id"])
        return None

    def signature(self, secret: str, url: str | None = None) -> str:
        """The signature header value.

        Meta: ``sha256=…`` over the body with the App Secret. Twilio: base64 HMAC-SHA1 over ``url``
        and the parameters with the Auth Token (``url`` is required).
        """
        if self.provider == "meta":
            return meta_signature(secret, self.body)
        if url is None:
            raise ValueError("a Twilio signature covers the webhook URL: pass url=")
        return twilio_signature(secret, url, self.params)

    def headers(self, secret: str | None = None, url: str | None = None) -> dict[str, str]:
        """Headers the provider sends with this body, signed when ``secret`` is given."""
        if self.provider == "meta":
            headers = {"Content-Type": _META_CONTENT_TYPE, "User-Agent": "facebookexternalua"}
            if secret is not None:
                headers["X-Hub-Signature-256"] = self.signature(secret)
            return headers
        headers = {
            "Content-Type": _TWILIO_CONTENT_TYPE,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        if secret is not None:
            headers["X-Twilio-Signature"] = self.signature(secret, url)
        return headers

    def request(
        self,
        url: str = DEFAULT_WEBHOOK_URL,
        *,
        secret: str | None = None,
        signed_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WebhookRequest:
        """This payload as a :class:`~eki_whatsapp.WebhookRequest` for ``bot.handle()``.

        Args:
            url: the URL the request is made to.
            secret: Meta App Secret or Twilio Auth Token; unsigned when ``None``.
            signed_url: the URL Twilio signs, when it differs from ``url`` (a proxy in between).
            headers: extra headers (they override the generated ones).
        """
        all_headers = self.headers(secret, signed_url or url)
        all_headers.update(headers or {})
        return WebhookRequest("POST", url, all_headers, None, self.body)

    def post(
        self,
        url: str,
        *,
        secret: str | None = None,
        signed_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """POST this payload to a running webhook over HTTP and return the response."""
        request = self.request(url, secret=secret, signed_url=signed_url, headers=headers)
        if client is not None:
            return client.post(url, content=self.body, headers=dict(request.headers))
        with httpx.Client(timeout=timeout) as own:
            return own.post(url, content=self.body, headers=dict(request.headers))

    async def post_async(
        self,
        url: str,
        *,
        secret: str | None = None,
        signed_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """Async face of :meth:`post`."""
        request = self.request(url, secret=secret, signed_url=signed_url, headers=headers)
        if client is not None:
            return await client.post(url, content=self.body, headers=dict(request.headers))
        async with httpx.AsyncClient(timeout=timeout) as own:
            return await own.post(url, content=self.body, headers=dict(request.headers))

    def __repr__(self) -> str:
        return f"Payload({self.provider}, {len(self.body)} bytes, id={self.message_id!r})"


def _meta_payload(body: Mapping[str, Any]) -> Payload:
    return Payload("meta", meta_json(body), _META_CONTENT_TYPE)


def _twilio_payload(params: Iterable[tuple[str, str]]) -> Payload:
    ordered = tuple((str(k), str(v)) for k, v in params)
    return Payload("twilio", urlencode(ordered).encode("ascii"), _TWILIO_CONTENT_TYPE, ordered)


# --------------------------------------------------------------------------------------------
# Meta
# --------------------------------------------------------------------------------------------
class MetaOptions(TypedDict, total=False):
    """Keyword options every Meta message builder accepts.

    Keys:
        sender: the user's phone digits (default ``16505551234``); ``None`` for a username-only
            user known only by ``user_id``.
        user_id: the user's business-scoped user id (BSUID, 2026), e.g. ``US.1349…``.
        profile_name: the user's WhatsApp display name (``None``: no ``profile``).
        message_id: the wamid (default: a fresh one).
        timestamp: Unix seconds (default: now).
        phone_number_id: Graph id of the business number.
        display_phone_number: the business number as digits.
        waba_id: the WhatsApp Business Account id (``entry[].id``).
        reply_to: wamid of the message being replied to (``context``).
        forwarded: mark as forwarded; frequently_forwarded: forwarded many times.
        referral: Click-to-WhatsApp ``referral`` object.
        errors: ``errors[]`` on the message (codes; shapes filled in).
    """

    sender: str | None
    user_id: str | None
    profile_name: str | None
    message_id: str | None
    timestamp: int | None
    phone_number_id: str
    display_phone_number: str
    waba_id: str
    reply_to: str | None
    forwarded: bool
    frequently_forwarded: bool
    referral: Mapping[str, Any] | None
    errors: Sequence[int]


def _envelope(value: dict[str, Any], waba_id: str, field: str = "messages") -> dict[str, Any]:
    change = {"value": value, "field": field}
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [change]}]}


def _metadata(display: str, phone_number_id: str) -> dict[str, str]:
    return {"display_phone_number": display, "phone_number_id": phone_number_id}


def meta_message(kind: str, content: Any = None, **options: Unpack[MetaOptions]) -> Payload:
    """Any Meta inbound message: ``messages[0].type = kind`` with ``messages[0][kind] = content``.

    The other builders are thin wrappers over this one; use it for kinds they do not cover::

        meta_message("request_welcome")
        meta_message("order", {"catalog_id": "1", "product_items": []})
    """
    sender = options.get("sender", DEFAULT_META_USER)
    user_id = options.get("user_id")
    profile_name = options.get("profile_name", DEFAULT_META_NAME)
    message_id = options.get("message_id") or new_wamid()
    timestamp = options.get("timestamp")
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    pnid = options.get("phone_number_id", DEFAULT_PHONE_NUMBER_ID)
    display = options.get("display_phone_number", DEFAULT_DISPLAY_PHONE_NUMBER)

    message: dict[str, Any] = {}
    context: dict[str, Any] = {}
    if options.get("reply_to"):
        context.update({"from": display, "id": options["reply_to"]})
    if options.get("frequently_forwarded"):
        context["frequently_forwarded"] = True
    elif options.get("forwarded"):
        context["forwarded"] = True
    if context:
        message["context"] = context
    if sender is not None:
        message["from"] = sender
    if user_id is not None:
        message["from_user_id"] = user_id
    message.update({"id": message_id, "timestamp": ts, "type": kind})
    if content is not None:
        message[kind] = content
    if options.get("referral"):
        message["referral"] = dict(options["referral"] or {})
    codes = options.get("errors") or ()
    if codes:
        message["errors"] = [meta_webhook_error(code) for code in codes]

    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": _metadata(display, pnid)}
    if kind != "system":  # system messages carry no contacts (docs/wire.md §3.2.1)
        contact: dict[str, Any] = {}
        if profile_name is not None:
            contact["profile"] = {"name": profile_name}
        if sender is not None:
            contact["wa_id"] = sender
        if user_id is not None:
            contact["user_id"] = user_id
        value["contacts"] = [contact]
    value["messages"] = [message]
    return _meta_payload(_envelope(value, options.get("waba_id", DEFAULT_WABA_ID)))


def meta_text(text: str, **options: Unpack[MetaOptions]) -> Payload:
    """A Meta text message (docs/wire.md §3.5). ``meta_text("Hola")``."""
    return meta_message("text", {"body": text}, **options)


def _media(
    kind: str,
    media_id: str | None,
    mime_type: str,
    *,
    caption: str | None = None,
    filename: str | None = None,
    sha256: str | None = None,
    url: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if caption is not None:
        obj["caption"] = caption
    if filename is not None:
        obj["filename"] = filename
    obj["mime_type"] = mime_type
    obj["sha256"] = sha256 or secrets.token_hex(32)
    obj["id"] = media_id or str(secrets.randbelow(10**16 - 10**15) + 10**15)
    obj.update(extra or {})
    if url is not None:
        obj["url"] = url
    return obj


def meta_image(
    media_id: str | None = None,
    *,
    caption: str | None = None,
    mime_type: str = "image/jpeg",
    sha256: str | None = None,
    url: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A Meta image message (media ``id`` to resolve with the Graph API; optional caption)."""
    obj = _media("image", media_id, mime_type, caption=caption, sha256=sha256, url=url)
    return meta_message("image", obj, **options)


def meta_video(
    media_id: str | None = None,
    *,
    caption: str | None = None,
    mime_type: str = "video/mp4",
    sha256: str | None = None,
    url: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A Meta video message."""
    obj = _media("video", media_id, mime_type, caption=caption, sha256=sha256, url=url)
    return meta_message("video", obj, **options)


def meta_audio(
    media_id: str | None = None,
    *,
    voice: bool = True,
    mime_type: str = "audio/ogg; codecs=opus",
    sha256: str | None = None,
    url: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A Meta audio message; ``voice=True`` (default) is a recorded voice note."""
    obj = _media("audio", media_id, mime_type, sha256=sha256, url=url, extra={"voice": voice})
    return meta_message("audio", obj, **options)


def meta_document(
    media_id: str | None = None,
    *,
    filename: str = "document.pdf",
    caption: str | None = None,
    mime_type: str = "application/pdf",
    sha256: str | None = None,
    url: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A Meta document message."""
    obj = _media("document", media_id, mime_type, caption=caption, filename=filename, sha256=sha256, url=url)
    return meta_message("document", obj, **options)


def meta_sticker(
    media_id: str | None = None,
    *,
    animated: bool = False,
    sha256: str | None = None,
    url: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A Meta sticker (``image/webp``)."""
    obj = _media("sticker", media_id, "image/webp", sha256=sha256, url=url, extra={"animated": animated})
    return meta_message("sticker", obj, **options)


def meta_location(
    latitude: float,
    longitude: float,
    *,
    name: str | None = None,
    address: str | None = None,
    url: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A shared location (a pin, or a place when ``name``/``address`` are given)."""
    obj: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    for key, value in (("name", name), ("address", address), ("url", url)):
        if value is not None:
            obj[key] = value
    return meta_message("location", obj, **options)


def meta_contacts(contacts: Sequence[Mapping[str, Any]], **options: Unpack[MetaOptions]) -> Payload:
    """Shared contact cards (docs/wire.md §3.2.1 ``contacts[]``)::

    meta_contacts([{"name": {"formatted_name": "Ana Lima", "first_name": "Ana"},
                    "phones": [{"phone": "+5511987654321", "type": "CELL", "wa_id": "5511987654321"}]}])
    """
    return meta_message("contacts", [dict(c) for c in contacts], **options)


def meta_button_reply(button_id: str, title: str, **options: Unpack[MetaOptions]) -> Payload:
    """A tap on an interactive reply button (``interactive.button_reply``).

    ``reply_to`` is the wamid of the buttons message (``context.id``); a fresh one by default.
    """
    options["reply_to"] = options.get("reply_to") or new_wamid()
    obj = {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}
    return meta_message("interactive", obj, **options)


def meta_list_reply(
    row_id: str,
    title: str,
    *,
    description: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A pick from an interactive list (``interactive.list_reply``)."""
    options["reply_to"] = options.get("reply_to") or new_wamid()
    row: dict[str, Any] = {"id": row_id, "title": title}
    if description is not None:
        row["description"] = description
    return meta_message("interactive", {"type": "list_reply", "list_reply": row}, **options)


def meta_button(payload: str, text: str, **options: Unpack[MetaOptions]) -> Payload:
    """A tap on a template's quick-reply button (``type: "button"``; ``context.id`` is the
    template message, ``reply_to``, a fresh wamid by default)."""
    options["reply_to"] = options.get("reply_to") or new_wamid()
    return meta_message("button", {"payload": payload, "text": text}, **options)


def meta_reaction(target_id: str, emoji: str | None, **options: Unpack[MetaOptions]) -> Payload:
    """A reaction to the message ``target_id``; ``emoji=None`` is a removed reaction (no
    ``emoji`` key)."""
    obj: dict[str, Any] = {"message_id": target_id}
    if emoji is not None:
        obj["emoji"] = emoji
    return meta_message("reaction", obj, **options)


def meta_order(
    catalog_id: str,
    items: Sequence[Mapping[str, Any]],
    *,
    text: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """An order from a catalog (``product_items[]{product_retailer_id, quantity, item_price, currency}``)."""
    obj: dict[str, Any] = {"catalog_id": catalog_id}
    if text is not None:
        obj["text"] = text
    obj["product_items"] = [dict(i) for i in items]
    return meta_message("order", obj, **options)


def meta_system(
    body: str,
    *,
    system_type: str = "user_changed_number",
    new_wa_id: str | None = None,
    **options: Unpack[MetaOptions],
) -> Payload:
    """A system message (the user changed number or user id); carries no ``contacts``."""
    obj: dict[str, Any] = {"body": body, "type": system_type}
    if new_wa_id is not None:
        obj["wa_id"] = new_wa_id
    return meta_message("system", obj, **options)


def meta_unsupported(unsupported_type: str = "poll", **options: Unpack[MetaOptions]) -> Payload:
    """A message kind the Cloud API does not support (e.g. a poll), with its 131051 error."""
    options.setdefault("errors", (131051,))
    return meta_message("unsupported", {"type": unsupported_type}, **options)


def meta_status(
    message_id: str,
    status: str = "delivered",
    *,
    recipient: str | None = DEFAULT_META_USER,
    recipient_user_id: str | None = None,
    timestamp: int | None = None,
    category: str | None = "service",
    pricing: bool | None = None,
    error_code: int | None = None,
    error_title: str | None = None,
    error_details: str | None = None,
    callback_data: str | None = None,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    waba_id: str = DEFAULT_WABA_ID,
) -> Payload:
    """A status receipt for a message you sent (docs/wire.md §3.4, §3.6).

    Args:
        message_id: the wamid you got back when sending.
        status: ``sent``, ``delivered``, ``read``, ``played`` or ``failed``.
        category: the per-message-pricing category (``service``, ``utility``, ``marketing``, ...).
            ``service`` is priced ``free_customer_service``, the others ``regular``.
        pricing: include a ``pricing`` object; default: on ``sent``/``delivered`` only.
        error_code: for ``failed`` — e.g. 131047 (window closed) or 131026 (undeliverable);
            the title and details are Meta's unless given. Default for ``failed``: 131000.
    """
    item: dict[str, Any] = {"id": message_id, "status": status}
    item["timestamp"] = str(int(time.time()) if timestamp is None else int(timestamp))
    if recipient is not None:
        item["recipient_id"] = recipient.removeprefix("+")
    if recipient_user_id is not None:
        item["recipient_user_id"] = recipient_user_id
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    if pricing is None:
        pricing = status in ("sent", "delivered")
    if pricing and category is not None and status != "failed":
        free = category == "service"
        item["pricing"] = {
            "billable": not free,
            "pricing_model": "PMP",
            "category": category,
            "type": "free_customer_service" if free else "regular",
        }
    if status == "failed" or error_code is not None:
        code = error_code if error_code is not None else 131000
        item["errors"] = [meta_webhook_error(code, title=error_title, details=error_details)]
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(display_phone_number, phone_number_id),
        "statuses": [item],
    }
    return _meta_payload(_envelope(value, waba_id))


def meta_change(field: str, value: Mapping[str, Any], *, waba_id: str = DEFAULT_WABA_ID) -> Payload:
    """Another webhook field (``message_template_status_update``, ``account_update``, ...)::

    meta_change("message_template_status_update", {"event": "APPROVED", "message_template_id": 1,
                "message_template_name": "order_shipped", "message_template_language": "en_US",
                "reason": "NONE"})
    """
    return _meta_payload(_envelope(dict(value), waba_id, field))


def meta_batch(*payloads: Payload, merge: bool = False) -> Payload:
    """Several Meta notifications in one body, as Meta batches them.

    By default every change is kept and changes of the same WABA share one ``entry``; with
    ``merge=True`` the ``messages``/``statuses``/``contacts`` of all ``messages`` changes are
    merged into a single ``value`` (the first one's metadata).
    """
    if not payloads:
        raise ValueError("meta_batch() needs at least one payload")
    entries: dict[str, list[dict[str, Any]]] = {}
    for payload in payloads:
        if payload.provider != "meta":
            raise ValueError("meta_batch() takes Meta payloads only")
        for entry in payload.data["entry"]:
            entries.setdefault(str(entry["id"]), []).extend(entry["changes"])
    if merge:
        merged: dict[str, Any] | None = None
        others: list[dict[str, Any]] = []
        for changes in entries.values():
            for change in changes:
                if change.get("field") != "messages":
                    others.append(change)
                    continue
                if merged is None:
                    merged = {"value": json.loads(meta_json(change["value"])), "field": "messages"}
                    continue
                for key in ("contacts", "messages", "statuses"):
                    items = change["value"].get(key)
                    if items:
                        target = merged["value"].setdefault(key, [])
                        target.extend(i for i in items if i not in target)
        first_id = next(iter(entries))
        entries = {first_id: ([merged] if merged else []) + others}
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": changes} for waba, changes in entries.items()],
    }
    return _meta_payload(body)


# --------------------------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------------------------
class TwilioOptions(TypedDict, total=False):
    """Keyword options every Twilio message builder accepts.

    Keys:
        sender: the user's phone (``5511987654321`` or ``+5511…``) or a BSUID (``US.123…``).
        profile_name: ``ProfileName`` (``None``: omitted).
        message_sid: ``MessageSid`` (default: a fresh ``SM…``).
        account_sid: ``AccountSid``.
        to: your WhatsApp sender number (``+14155238886``, the sandbox, by default).
        user_id: the user's BSUID, sent as ``ExternalUserId``.
        reply_to: ``OriginalRepliedMessageSid`` (the message the user replied to).
        forwarded: ``Forwarded=true``; frequently_forwarded: ``FrequentlyForwarded=true``.
        messaging_service_sid: ``MessagingServiceSid`` (``MG…``) when the sender is in a service.
        extra: more parameters appended as given (e.g. ``Referral…``).
    """

    sender: str
    profile_name: str | None
    message_sid: str | None
    account_sid: str
    to: str
    user_id: str | None
    reply_to: str | None
    forwarded: bool
    frequently_forwarded: bool
    messaging_service_sid: str | None
    extra: Sequence[tuple[str, str]]


def _address(number: str) -> str:
    text = number.strip()
    if text.lower().startswith("whatsapp:"):
        return text
    plain = text.removeprefix("+")
    return f"whatsapp:+{plain}" if plain.isdigit() else f"whatsapp:{text}"


def twilio_message(
    body: str = "",
    *,
    message_type: str = "text",
    fields: Sequence[tuple[str, str]] = (),
    media: Sequence[tuple[str, str]] = (),
    **options: Unpack[TwilioOptions],
) -> Payload:
    """Any Twilio inbound WhatsApp message, parameters in Twilio's wire order (docs/wire.md §7).

    Args:
        body: ``Body`` (text, caption, or the button text).
        message_type: ``MessageType`` (``text``, ``image``, ``location``, ``interactive``, ...).
        fields: message-specific parameters placed after ``Body`` (``ButtonText``, ``Latitude``...).
        media: ``(url, content_type)`` pairs → ``MediaUrl{N}``/``MediaContentType{N}``.
    """
    sid = options.get("message_sid") or new_message_sid("MM" if media else "SM")
    sender = options.get("sender", DEFAULT_TWILIO_USER)
    from_address = _address(sender)
    plain = normalize(sender)
    profile_name = options.get("profile_name", DEFAULT_TWILIO_NAME)
    params: list[tuple[str, str]] = []
    params.extend((f"MediaContentType{n}", ctype) for n, (_, ctype) in enumerate(media))
    params += [("SmsMessageSid", sid), ("NumMedia", str(len(media)))]
    if profile_name is not None:
        params.append(("ProfileName", profile_name))
    params += [("MessageType", message_type), ("SmsSid", sid)]
    if plain.isdigit():
        params.append(("WaId", plain))
    if options.get("user_id"):
        params.append(("ExternalUserId", _address(str(options["user_id"]))))
    params += [("SmsStatus", "received"), ("Body", body)]
    if options.get("forwarded") or options.get("frequently_forwarded"):
        params.append(("Forwarded", "true"))
    if options.get("frequently_forwarded"):
        params.append(("FrequentlyForwarded", "true"))
    params.extend(fields)
    params += [("To", _address(options.get("to", DEFAULT_TWILIO_NUMBER))), ("NumSegments", "1")]
    params.append(("ReferralNumMedia", "0"))
    params.extend((f"MediaUrl{n}", url) for n, (url, _) in enumerate(media))
    if options.get("messaging_service_sid"):
        params.append(("MessagingServiceSid", str(options["messaging_service_sid"])))
    params += [("MessageSid", sid), ("AccountSid", options.get("account_sid", DEFAULT_TWILIO_ACCOUNT_SID))]
    if options.get("reply_to"):
        params.append(("OriginalRepliedMessageSid", str(options["reply_to"])))
        params.append(("OriginalRepliedMessageSender", _address(options.get("to", DEFAULT_TWILIO_NUMBER))))
    params += [("From", from_address), ("ApiVersion", "2010-04-01")]
    params.extend(options.get("extra") or ())
    return _twilio_payload(params)


def twilio_text(text: str, **options: Unpack[TwilioOptions]) -> Payload:
    """A Twilio WhatsApp text message (docs/wire.md §11 T1 shape). ``twilio_text("Olá, tudo bem?")``."""
    return twilio_message(text, **options)


def twilio_media(
    url: str | None = None,
    content_type: str = "image/jpeg",
    *,
    caption: str = "",
    **options: Unpack[TwilioOptions],
) -> Payload:
    """A Twilio media message (``MediaUrl0``/``MediaContentType0``; ``Body`` is the caption).

    ``url`` defaults to a Twilio-shaped media URL; point it at a
    :class:`~eki_whatsapp.testing.FakeTwilioAPI` (``fake.add_media(...)``) to make it downloadable.
    """
    account = options.get("account_sid", DEFAULT_TWILIO_ACCOUNT_SID)
    sid = options.get("message_sid") or new_message_sid("MM")
    options["message_sid"] = sid
    if url is None:
        url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{account}/Messages/{sid}/Media/"
            f"{new_message_sid('ME')}"
        )
    kind = content_type.split("/", 1)[0]
    message_type = kind if kind in ("image", "video", "audio") else "document"
    if content_type == "image/webp":
        message_type = "sticker"
    return twilio_message(caption, message_type=message_type, media=[(url, content_type)], **options)


def twilio_location(
    latitude: float,
    longitude: float,
    *,
    address: str | None = None,
    label: str | None = None,
    **options: Unpack[TwilioOptions],
) -> Payload:
    """A shared location (``Latitude``/``Longitude``, optional ``Address``/``Label``)."""
    fields = [("Latitude", repr(float(latitude))), ("Longitude", repr(float(longitude)))]
    if address is not None:
        fields.append(("Address", address))
    if label is not None:
        fields.append(("Label", label))
    return twilio_message("", message_type="location", fields=fields, **options)


def twilio_button(
    payload: str,
    text: str,
    *,
    message_type: str = "interactive",
    **options: Unpack[TwilioOptions],
) -> Payload:
    """A quick-reply tap (``ButtonText``/``ButtonPayload``, docs/wire.md §7.2).

    ``message_type="button"`` for a template quick-reply; ``reply_to`` is the ``SM…`` of the
    message with the buttons (a fresh one by default).
    """
    options["reply_to"] = options.get("reply_to") or new_message_sid("SM")
    fields = [("ButtonText", text), ("ButtonPayload", payload)]
    return twilio_message(text, message_type=message_type, fields=fields, **options)


def twilio_list_reply(item_id: str, title: str, **options: Unpack[TwilioOptions]) -> Payload:
    """A pick from a ``twilio/list-picker`` (``ListId``/``ListTitle``; docs/wire.md §7.1 marks the
    exact parameter names as to be verified against a live payload)."""
    options["reply_to"] = options.get("reply_to") or new_message_sid("SM")
    fields = [("ListId", item_id), ("ListTitle", title)]
    return twilio_message(title, message_type="interactive", fields=fields, **options)


# EventType values seen in real callbacks (docs/wire.md §7.3); other statuses carry none
_EVENT_TYPES = {"delivered": "DELIVERED", "read": "READ", "undelivered": "UNDELIVERED"}


def twilio_status(
    message_sid: str,
    status: str = "delivered",
    *,
    to: str = DEFAULT_TWILIO_USER,
    sender: str = DEFAULT_TWILIO_NUMBER,
    account_sid: str = DEFAULT_TWILIO_ACCOUNT_SID,
    error_code: int | None = None,
    error_message: str | None = None,
    messaging_service_sid: str | None = None,
) -> Payload:
    """A status callback for a message you sent (docs/wire.md §7.3).

    Args:
        message_sid: the ``SM…`` you got back when sending.
        status: ``queued``, ``sent``, ``delivered``, ``read``, ``failed`` or ``undelivered``.
        to: the user the message went to; sender: your WhatsApp number.
        error_code: e.g. 63016 (outside the 24-hour window) for ``failed``/``undelivered``.
    """
    params: list[tuple[str, str]] = [
        ("ChannelPrefix", "whatsapp"),
        ("ApiVersion", "2010-04-01"),
        ("MessageStatus", status),
        ("SmsSid", message_sid),
        ("SmsStatus", status),
        ("ChannelInstallSid", "XE" + "0" * 32),
        ("To", _address(to)),
        ("From", _address(sender)),
        ("MessageSid", message_sid),
        ("AccountSid", account_sid),
    ]
    if messaging_service_sid:
        params.append(("MessagingServiceSid", messaging_service_sid))
    if error_code is not None:
        text = error_message or TWILIO_ERRORS.get(error_code, (400, f"Twilio error {error_code}"))[1]
        params += [("ErrorCode", str(error_code)), ("ChannelStatusMessage", text)]
    plain_to = normalize(to)
    params.append(("ChannelToAddress", "+" + plain_to if plain_to.isdigit() else plain_to))
    if status in _EVENT_TYPES:
        params.append(("EventType", _EVENT_TYPES[status]))
    params.append(("StructuredMessage", "false"))
    return _twilio_payload(params)
