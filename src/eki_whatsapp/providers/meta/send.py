"""Meta WhatsApp Cloud API (Graph API) provider: :class:`MetaCloud`.

Example::

    from eki_whatsapp.messages import Buttons
    from eki_whatsapp.providers import MetaCloud

    meta = MetaCloud(token="EAAG...", phone_number_id="106540352242922")
    receipt = meta.send("+16505551234", "Hello!")
    meta.send("16505551234", Buttons("Confirm?", ["Yes", "No"]))
    meta.mark_as_read(inbound.id, typing=True)
    data = meta.download_media(inbound.media[0])

Every request goes to ``{base_url}/{graph_version}/...`` with ``Authorization: Bearer``;
``base_url`` defaults to ``https://graph.facebook.com`` (``META_GRAPH_BASE_URL``) so a fake
Graph server can stand in for tests, the sandbox or staging.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from ...addresses import Address
from ...errors import ConfigError
from ...events import MediaRef
from ...formatting import META_TEXT_LIMIT, split
from ...messages import (
    MODELS,
    Buttons,
    Catalog,
    Contact,
    Contacts,
    CtaUrl,
    Currency,
    DateTime,
    Flow,
    ListMenu,
    Location,
    LocationRequest,
    Media,
    Message,
    Product,
    ProductList,
    Reaction,
    Template,
    TemplateValue,
    Text,
)
from .._common import Accepted, HttpProvider, coerce, json_body, parse_recipient, part_key
from .._http import Attempts, HttpOptions, Plan, exchange, parse_retry_after
from ..base import ProviderError, ProviderName, SendReceipt, UnsupportedMessage, classify_error
from . import templates
from .errors import PAIR_LIMIT
from .media import download_plan, upload_plan
from .parse import CORRELATION_PREFIX, correlation_of

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ...settings import Settings
    from ...store.base import Store
    from ...templates.definition import RemoteTemplate, TemplateDefinition

__all__ = ["MetaCloud"]

_JSON = "application/json"
#: One encoder for every body (json.dumps with options builds a new one on each call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: After a pair rate limit Meta advises waiting at least 6 s for that recipient.
_PAIR_LIMIT_WAIT = 6.0
#: Every message model Meta renders: all of them.
_MODELS = MODELS


class MetaCloud(HttpProvider):
    """Sends through Meta's WhatsApp Cloud API.

    Args:
        token: a permanent System User access token with ``whatsapp_business_messaging``
            (``META_WHATSAPP_TOKEN``). Never logged or shown in ``repr``.
        phone_number_id: the Graph id of the sending number (``META_PHONE_NUMBER_ID``).
        graph_version: Graph API version, e.g. ``"v26.0"`` (``META_GRAPH_VERSION``).
        base_url: Graph API root (``META_GRAPH_BASE_URL``); point it at a fake server to test.
        business_account_id: the WhatsApp Business Account id (``META_BUSINESS_ACCOUNT_ID``);
            needed to manage templates.
        retry: the :class:`~eki_whatsapp.providers.RetryPolicy` (default: 4 attempts, 30 s).
        timeout: an ``httpx.Timeout`` or seconds (default: connect 5 s, read/write 30 s).
        limits: the connection pool size (``httpx.Limits``).
        client, async_client: ready ``httpx`` clients to use instead of making pooled ones.
        transport, async_transport: ``httpx`` transports for the clients this provider makes.
    """

    name: ProviderName = "meta"
    text_limit: int = META_TEXT_LIMIT

    def __init__(
        self,
        token: str | SecretStr,
        phone_number_id: str,
        *,
        graph_version: str = "v26.0",
        base_url: str = "https://graph.facebook.com",
        business_account_id: str | None = None,
        **http: Unpack[HttpOptions],
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not secret or not str(secret).strip():
            raise ConfigError("MetaCloud needs an access token: set META_WHATSAPP_TOKEN")
        if not phone_number_id or not str(phone_number_id).strip():
            raise ConfigError("MetaCloud needs the sender's phone-number id: set META_PHONE_NUMBER_ID")
        super().__init__(**http)
        self._token = SecretStr(secret.strip())
        self.phone_number_id = str(phone_number_id).strip()
        self.graph_version = graph_version
        self.base_url = base_url.rstrip("/")
        self._api = f"{self.base_url}/{graph_version}"
        # Parsed once: httpx parses a URL given as text on every request (half its cost).
        self._messages_url = httpx.URL(f"{self._api}/{self.phone_number_id}/messages")
        self._base_host = urlsplit(self.base_url).hostname or ""
        self.business_account_id = business_account_id
        self.store: Store | None = None
        # The headers of every JSON post, built once (httpx normalises a dict on each request).
        self._json_headers = httpx.Headers({**self._auth(), "Content-Type": _JSON})

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> MetaCloud:
        """Build from :class:`~eki_whatsapp.Settings` (``META_*``); ``options`` go to ``__init__``."""
        if settings.meta_whatsapp_token is None or not settings.meta_phone_number_id:
            raise ConfigError(
                "MetaCloud needs META_WHATSAPP_TOKEN and META_PHONE_NUMBER_ID "
                "(WhatsApp Manager > API setup shows the phone-number id)"
            )
        return cls(
            settings.meta_whatsapp_token,
            settings.meta_phone_number_id,
            graph_version=settings.meta_graph_version,
            base_url=settings.meta_graph_base_url,
            business_account_id=settings.meta_business_account_id,
            **options,
        )

    @property
    def business_number(self) -> str:
        """The phone-number id (equals ``InboundMessage.recipient`` of messages to it)."""
        return self.phone_number_id

    def attach_store(self, store: Store) -> None:
        """Share ``store``: the states of pushed templates live there."""
        self.store = store

    def unsupported_reason(self, message: Message | str) -> str | None:
        """Why Meta cannot send ``message`` now (``None``: it can): a template pushed with
        :mod:`eki_whatsapp.templates` that Meta has not approved, or an unknown type."""
        message = coerce(message)
        if isinstance(message, Template):
            from ...templates.registry import ready_on

            if ready_on(self.store, self.name, message.name, message.language) is False:
                return (
                    f"template {message.name!r} ({message.language}) is not approved on Meta yet: "
                    "see `eki-whatsapp templates status`"
                )
            return None
        if not isinstance(message, _MODELS):
            return f"cannot send {type(message).__name__}: pass a str or a model from eki_whatsapp.messages"
        return None

    def supports(self, message: Message | str) -> bool:
        """Whether Meta can carry ``message``: every model in :mod:`eki_whatsapp.messages`, but
        not a template pushed with :mod:`eki_whatsapp.templates` that Meta has not approved."""
        return self.unsupported_reason(message) is None

    # --- templates (docs/wire.md §4.10; the requests: providers/meta/templates.py) ---------------
    def create_template(self, definition: TemplateDefinition) -> RemoteTemplate:
        """Submit a template for review (``POST /{WABA-ID}/message_templates``)."""
        result: RemoteTemplate = self._run(templates.create_plan(self, definition))
        return result

    def update_template(self, remote_id: str, definition: TemplateDefinition) -> RemoteTemplate:
        """Edit a template (``POST /{template-id}``): it goes back to review."""
        result: RemoteTemplate = self._run(templates.update_plan(self, remote_id, definition))
        return result

    def fetch_template(
        self, definition: TemplateDefinition, remote_id: str | None = None
    ) -> RemoteTemplate | None:
        """The template's status as Meta reports it now (``None``: Meta has no such template)."""
        result: RemoteTemplate | None = self._run(templates.fetch_plan(self, definition, remote_id))
        return result

    def __repr__(self) -> str:
        return f"MetaCloud(phone_number_id={self.phone_number_id!r}, graph_version={self.graph_version!r})"

    # --- requests -------------------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    def _post_json(self, url: str | httpx.URL, payload: Mapping[str, Any]) -> Callable[[], httpx.Request]:
        content = _ENCODER.encode(payload).encode()
        headers = self._json_headers

        def build() -> httpx.Request:
            return httpx.Request("POST", url, content=content, headers=headers)

        return build

    def payloads(self, to: str, message: Message, correlation: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies :meth:`send` posts for ``message`` (several for a long text).

        With ``correlation``, each body carries it (``eki:<key>``, :func:`part_key` per part) in
        ``biz_opaque_callback_data``, which Meta echoes in the message's status webhooks — unless
        the message sets its own (``Template.callback_data``), which is kept.

        Raises :class:`~eki_whatsapp.messages.MessageError` /
        :class:`~eki_whatsapp.providers.UnsupportedMessage` before anything is sent.
        """
        recipient = parse_recipient(self.name, to)
        if isinstance(message, Text):
            # Only the first part quotes the replied-to message.
            bodies = [
                _envelope(
                    recipient,
                    "text",
                    {"body": part, "preview_url": message.preview_url},
                    message.reply_to if index == 0 else None,
                )
                for index, part in enumerate(split(message.body, self.text_limit))
            ]
        else:
            bodies = [render(recipient, message)]
        if correlation is not None:
            for index, body in enumerate(bodies):
                key = f"{CORRELATION_PREFIX}{part_key(correlation, index)}"
                body.setdefault("biz_opaque_callback_data", key)
        return bodies

    def _send_plan(self, to: str, message: Message, correlation: str | None = None) -> Plan[SendReceipt]:
        bodies = self.payloads(to, message, correlation)
        builds = [self._post_json(self._messages_url, p) for p in bodies]
        keys = [correlation_of(b.get("biz_opaque_callback_data")) for b in bodies]
        return self._send_all(to, _kind(message), builds, self._parse_send, keys)

    def _parse_send(self, response: httpx.Response) -> Accepted:
        data = json_body(response)
        if response.is_success and isinstance(data, dict):
            messages = data.get("messages")
            if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                first = messages[0]
                if first.get("id"):
                    return Accepted(str(first["id"]), str(first.get("message_status") or "accepted"), data)
        raise self._error(response, data)

    def _error(self, response: httpx.Response, data: Any, *, media: bool = False) -> ProviderError:
        """The typed error for a failed Graph API response."""
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            code = int(code) if isinstance(code, (int, str)) and str(code).lstrip("-").isdigit() else None
            text = str(error.get("message") or "")
            details = (
                error.get("error_data", {}).get("details")
                if isinstance(error.get("error_data"), dict)
                else None
            )
            if details and str(details) not in text:
                text = f"{text}: {details}" if text else str(details)
            if code == PAIR_LIMIT and retry_after is None:
                retry_after = _PAIR_LIMIT_WAIT
            transient = error.get("is_transient") if isinstance(error.get("is_transient"), bool) else None
            return classify_error(
                self.name,
                code,
                text,
                http_status=response.status_code,
                raw=error,
                retry_after=retry_after,
                transient=transient,
            )
        if response.is_success:
            text = "the Graph API answered without the expected fields"
        else:
            text = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        return self._failure(text, response, data, retry_after=retry_after, media=media)

    # --- read receipts and typing -------------------------------------------------------------
    def _read_plan(self, message_id: str, typing: bool) -> Plan[bool]:
        if not message_id:
            raise ValueError("mark_as_read needs the id (wamid) of the inbound message")
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing:
            payload["typing_indicator"] = {"type": "text"}

        def parse(response: httpx.Response) -> bool:
            data = json_body(response)
            if response.is_success and isinstance(data, dict):
                return bool(data.get("success", True))
            raise self._error(response, data)

        return exchange(
            self.name, self._post_json(self._messages_url, payload), parse, self.retry, Attempts()
        )

    def mark_as_read(self, message_id: str, *, typing: bool = False) -> bool:
        """Mark an inbound message (and the earlier ones) read; ``typing=True`` also shows the
        typing indicator until you reply or 25 s pass. Returns Meta's ``success``."""
        result: bool = self._run(self._read_plan(message_id, typing))
        return result

    async def mark_as_read_async(self, message_id: str, *, typing: bool = False) -> bool:
        """Async face of :meth:`mark_as_read`."""
        result: bool = await self._run_async(self._read_plan(message_id, typing))
        return result

    def show_typing(self, message_id: str) -> bool:
        """Show the typing indicator in reply to ``message_id`` (marks it read too)."""
        return self.mark_as_read(message_id, typing=True)

    async def show_typing_async(self, message_id: str) -> bool:
        """Async face of :meth:`show_typing`."""
        return await self.mark_as_read_async(message_id, typing=True)

    # --- media (providers/meta/media.py) ---------------------------------------------------------
    def _download_plan(self, ref: MediaRef) -> Plan[bytes]:
        return download_plan(self, ref)

    def upload_media(self, data: bytes, mime: str, *, filename: str = "file") -> str:
        """Upload bytes to Meta; returns the media id to send with ``Media(kind, media_id=...)``.

        Uploaded media lives 30 days.
        """
        result: str = self._run(upload_plan(self, data, mime, filename))
        return result

    async def upload_media_async(self, data: bytes, mime: str, *, filename: str = "file") -> str:
        """Async face of :meth:`upload_media`."""
        result: str = await self._run_async(upload_plan(self, data, mime, filename))
        return result


# --------------------------------------------------------------------------------------------
# Rendering (pure functions: message model → Graph API JSON)
# --------------------------------------------------------------------------------------------
def _kind(message: Message) -> str:
    return str(getattr(message, "kind", type(message).__name__.lower()))


def _envelope(recipient: Address, kind: str, obj: Any, reply_to: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if recipient.is_bsuid:
        body["recipient"] = recipient.value
    else:
        body["to"] = recipient.value
    body["type"] = kind
    body[kind] = obj
    if reply_to:
        body["context"] = {"message_id": reply_to}
    return body


def _media_object(media: Media, *, with_caption: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": media.media_id} if media.media_id is not None else {"link": media.url}
    if with_caption and media.caption is not None:
        obj["caption"] = media.caption
    if media.filename is not None:
        obj["filename"] = media.filename
    if media.voice:
        obj["voice"] = True
    return obj


def _location_object(location: Location) -> dict[str, Any]:
    obj: dict[str, Any] = {"latitude": location.latitude, "longitude": location.longitude}
    if location.name is not None:
        obj["name"] = location.name
    if location.address is not None:
        obj["address"] = location.address
    return obj


def _template_value(value: TemplateValue, name: str | None) -> dict[str, Any]:
    param: dict[str, Any]
    if isinstance(value, Currency):
        param = {
            "type": "currency",
            "currency": {
                "fallback_value": value.fallback_value,
                "code": value.code,
                "amount_1000": value.amount_1000,
            },
        }
    elif isinstance(value, DateTime):
        param = {"type": "date_time", "date_time": {"fallback_value": value.fallback_value}}
    else:
        param = {"type": "text", "text": value}
    if name is not None:
        param["parameter_name"] = name
    return param


def _template(template: Template) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    header = template.header
    if header is not None:
        if isinstance(header, Media):
            param: dict[str, Any] = {
                "type": header.kind,
                header.kind: _media_object(header, with_caption=False),
            }
        elif isinstance(header, Location):
            param = {"type": "location", "location": _location_object(header)}
        else:
            param = {"type": "text", "text": header}
        components.append({"type": "header", "parameters": [param]})
    if isinstance(template.body, Mapping):
        params = [_template_value(v, k) for k, v in template.body.items()]
    else:
        params = [_template_value(v, None) for v in template.body]
    if params:
        components.append({"type": "body", "parameters": params})
    for button in template.buttons:
        if button.sub_type == "quick_reply":
            parameters: list[dict[str, Any]] = [{"type": "payload", "payload": button.payload}]
        elif button.sub_type == "copy_code":
            parameters = [{"type": "coupon_code", "coupon_code": button.text}]
        elif button.sub_type == "flow":
            # Meta's examples always send one action parameter; an empty list is refused.
            action: dict[str, Any] = {"flow_token": button.payload} if button.payload else {}
            parameters = [{"type": "action", "action": action}]
        else:
            parameters = [{"type": "text", "text": button.text}]
        components.append(
            {
                "type": "button",
                "sub_type": button.sub_type,
                "index": str(button.index),
                "parameters": parameters,
            }
        )
    obj: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        obj["components"] = components
    return obj


def _interactive_header(header: str | Media | None) -> dict[str, Any] | None:
    if header is None:
        return None
    if isinstance(header, Media):
        return {"type": header.kind, header.kind: _media_object(header, with_caption=False)}
    return {"type": "text", "text": header}


def _interactive(
    kind: str, message: Buttons | ListMenu | CtaUrl | Flow, action: dict[str, Any]
) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": kind}
    header = _interactive_header(message.header)
    if header is not None:
        obj["header"] = header
    obj["body"] = {"text": message.body}
    if message.footer is not None:
        obj["footer"] = {"text": message.footer}
    obj["action"] = action
    return obj


def _plain_interactive(
    kind: str, action: dict[str, Any], body: str | None, footer: str | None = None, header: str | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": kind}
    if header is not None:
        obj["header"] = {"type": "text", "text": header}
    if body is not None:
        obj["body"] = {"text": body}
    if footer is not None:
        obj["footer"] = {"text": footer}
    obj["action"] = action
    return obj


def _contact(contact: Contact) -> dict[str, Any]:
    """One card of a ``contacts`` message (docs/wire.md §4)."""
    name: dict[str, Any] = {"formatted_name": contact.formatted_name}
    # Meta needs one name part besides formatted_name.
    name["first_name"] = contact.first_name or (None if contact.last_name else contact.formatted_name)
    if contact.last_name:
        name["last_name"] = contact.last_name
    card: dict[str, Any] = {"name": {k: v for k, v in name.items() if v is not None}}
    if contact.phone_list:
        phones = []
        for phone in contact.phone_list:
            item = {"phone": phone.phone, "type": phone.type, "wa_id": phone.wa_id}
            phones.append({k: v for k, v in item.items() if v is not None})
        card["phones"] = phones
    if contact.emails:
        card["emails"] = [{"email": email} for email in contact.emails]
    if contact.urls:
        card["urls"] = [{"url": url} for url in contact.urls]
    if contact.addresses:
        card["addresses"] = [
            {k: v for k, v in _address_fields(a).items() if v is not None} for a in contact.addresses
        ]
    org = {"company": contact.company, "department": contact.department, "title": contact.title}
    if any(org.values()):
        card["org"] = {k: v for k, v in org.items() if v is not None}
    if contact.birthday:
        card["birthday"] = contact.birthday
    return card


def _address_fields(address: Any) -> dict[str, Any]:
    return {
        "street": address.street,
        "city": address.city,
        "state": address.state,
        "zip": address.zip,
        "country": address.country,
        "country_code": address.country_code,
        "type": address.type,
    }


def _flow_action(flow: Flow) -> dict[str, Any]:
    parameters: dict[str, Any] = {"flow_message_version": "3"}
    if flow.token is not None:
        parameters["flow_token"] = flow.token
    if flow.flow_id is not None:
        parameters["flow_id"] = flow.flow_id
    else:
        parameters["flow_name"] = flow.flow_name
    parameters["flow_cta"] = flow.cta
    parameters["flow_action"] = flow.action
    if flow.mode != "published":
        parameters["mode"] = flow.mode
    if flow.action == "navigate":
        payload: dict[str, Any] = {"screen": flow.screen}
        if flow.data:
            payload["data"] = dict(flow.data)
        parameters["flow_action_payload"] = payload
    return {"name": "flow", "parameters": parameters}


def render(recipient: Address, message: Message) -> dict[str, Any]:
    """The Graph API ``/messages`` body for one (non-text) message model."""
    if isinstance(message, Media):
        return _envelope(recipient, message.kind, _media_object(message), message.reply_to)
    if isinstance(message, Template):
        body = _envelope(recipient, "template", _template(message), message.reply_to)
        if message.callback_data is not None:
            body["biz_opaque_callback_data"] = message.callback_data
        return body
    if isinstance(message, Buttons):
        action: dict[str, Any] = {
            "buttons": [{"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in message.items]
        }
        return _envelope(recipient, "interactive", _interactive("button", message, action), message.reply_to)
    if isinstance(message, ListMenu):
        sections: list[dict[str, Any]] = []
        for section in message.section_list:
            rows: list[dict[str, str]] = []
            for row in section.rows:
                item = {"id": row.id, "title": row.title}
                if row.description is not None:
                    item["description"] = row.description
                rows.append(item)
            entry: dict[str, Any] = {"rows": rows}
            if section.title is not None:
                entry = {"title": section.title, "rows": rows}
            sections.append(entry)
        menu = {"button": message.button, "sections": sections}
        return _envelope(recipient, "interactive", _interactive("list", message, menu), message.reply_to)
    if isinstance(message, Location):
        return _envelope(recipient, "location", _location_object(message), message.reply_to)
    if isinstance(message, Contacts):
        return _envelope(recipient, "contacts", [_contact(c) for c in message.items], message.reply_to)
    if isinstance(message, CtaUrl):
        action = {"name": "cta_url", "parameters": {"display_text": message.display_text, "url": message.url}}
        return _envelope(recipient, "interactive", _interactive("cta_url", message, action), message.reply_to)
    if isinstance(message, LocationRequest):
        obj = _plain_interactive("location_request_message", {"name": "send_location"}, message.body)
        return _envelope(recipient, "interactive", obj, message.reply_to)
    if isinstance(message, Flow):
        obj = _interactive("flow", message, _flow_action(message))
        return _envelope(recipient, "interactive", obj, message.reply_to)
    if isinstance(message, Product):
        action = {"catalog_id": message.catalog_id, "product_retailer_id": message.product_id}
        obj = _plain_interactive("product", action, message.body, message.footer)
        return _envelope(recipient, "interactive", obj, message.reply_to)
    if isinstance(message, ProductList):
        product_sections = [
            {"title": s.title, "product_items": [{"product_retailer_id": p} for p in s.product_ids]}
            for s in message.sections
        ]
        action = {"catalog_id": message.catalog_id, "sections": product_sections}
        obj = _plain_interactive("product_list", action, message.body, message.footer, message.header)
        return _envelope(recipient, "interactive", obj, message.reply_to)
    if isinstance(message, Catalog):
        action = {"name": "catalog_message"}
        if message.thumbnail_product_id is not None:
            action["parameters"] = {"thumbnail_product_retailer_id": message.thumbnail_product_id}
        obj = _plain_interactive("catalog_message", action, message.body, message.footer)
        return _envelope(recipient, "interactive", obj, message.reply_to)
    if isinstance(message, Reaction):
        return _envelope(
            recipient, "reaction", {"message_id": message.message_id, "emoji": message.emoji}, None
        )
    if isinstance(message, Text):
        return _envelope(
            recipient, "text", {"body": message.body, "preview_url": message.preview_url}, message.reply_to
        )
    error = UnsupportedMessage(
        f"cannot send {type(message).__name__}: pass a str or a model from eki_whatsapp.messages",
        provider="meta",
    )
    error.attempts = 0
    raise error
