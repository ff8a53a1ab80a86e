"""Twilio Programmable Messaging (WhatsApp) provider: :class:`Twilio`.

Example::

    from eki_whatsapp.messages import Template
    from eki_whatsapp.providers import Twilio

    twilio = Twilio("AC...", "auth-token", from_="whatsapp:+14155238886")
    twilio.send("+5511987654321", "Olá!")
    twilio.send("+5511987654321", Template("order_shipped", body=["Ana"], content_sid="HX..."))

Messages are form posts to ``{base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with
HTTP Basic auth; ``base_url`` defaults to ``https://api.twilio.com`` (``TWILIO_API_BASE_URL``).

What Twilio cannot send natively is rendered or refused, never dropped:

* ``Buttons`` / ``ListMenu`` / ``CtaUrl`` are real WhatsApp buttons: session content
  (``twilio/quick-reply``, ``twilio/list-picker``, ``twilio/call-to-action``) is created on
  demand through the Content API, its ``ContentSid`` cached in the Store by a hash of the
  content, and sent with ``ContentSid``. When the Content API refuses, they become numbered
  text (``1. Yes``) — ``Buttons.match()`` maps the answer back. The log line and
  ``SendReceipt.rendering`` say which was used. A given ``content_sid`` is sent as is.
* ``Template`` needs a ``content_sid`` (``HX…``), given or found by name among the templates
  pushed with :mod:`eki_whatsapp.templates`; ``ContentVariables`` is sent as a JSON string.
* ``Location`` is sent as ``PersistentAction=geo:lat,lon|label`` with the place as ``Body``.
* ``Media`` needs a public URL (Meta media ids are refused); the caption is the ``Body``; a
  voice note (``voice=True``) is the same ``MediaUrl``.
* ``Flow``, ``Product``, ``ProductList`` and ``Catalog`` need a ``content_sid`` (``twilio/flows``,
  ``twilio/catalog``); ``Contacts``, ``LocationRequest`` and ``Reaction`` are refused
  (:class:`~eki_whatsapp.providers.UnsupportedMessage`). :meth:`Twilio.supports` says so before
  any request, so the router can pick Meta instead.
* ``reply_to`` cannot be expressed through the Messages API: the message is sent unquoted and
  a debug log line says so.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import SecretStr

from ...addresses import Address, normalize
from ...errors import ConfigError
from ...events import MediaRef
from ...formatting import TWILIO_TEXT_LIMIT, split
from ...messages import (
    Message,
    Template,
)
from .._common import Accepted, HttpProvider, coerce, json_body, parse_recipient, part_key
from .._http import HttpOptions, Plan, parse_retry_after
from ..base import (
    ProviderError,
    ProviderName,
    SendReceipt,
)
from . import templates
from .cache import ContentCache
from .content import (
    Form,
    content_form,
    content_variables_json,
    session_content,
)
from .content_api import create_content_plan
from .media import download_plan
from .parse import CORRELATION_PARAM
from .render import render, unsupported_reason

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ...settings import Settings
    from ...store.base import Store
    from ...templates.definition import RemoteTemplate, TemplateDefinition

__all__ = ["Twilio"]

logger = logging.getLogger("eki_whatsapp.providers.twilio")

_FORM = "application/x-www-form-urlencoded"
_DEFAULT_API = "https://api.twilio.com"
_DEFAULT_CONTENT_API = "https://content.twilio.com"


class Twilio(HttpProvider):
    """Sends WhatsApp messages through Twilio's Messages API.

    Args:
        account_sid: ``AC…`` (``TWILIO_ACCOUNT_SID``).
        auth_token: the account's auth token (``TWILIO_AUTH_TOKEN``); never logged or shown.
        from_: the sender, ``whatsapp:+14155238886`` or ``+14155238886``
            (``TWILIO_WHATSAPP_NUMBER``); optional with ``messaging_service_sid``.
        messaging_service_sid: ``MG…`` to send from a Messaging Service's sender pool.
        status_callback: URL Twilio posts delivery statuses to (``TWILIO_STATUS_CALLBACK_URL``).
        base_url: API root (``TWILIO_API_BASE_URL``); point it at a fake server to test.
        content_base_url: Content API root; ``https://content.twilio.com`` when ``base_url`` is a
            Twilio host, else ``base_url`` itself (the fake serves both).
        store: where ContentSids of on-demand content are cached and pushed templates are found
            (the bot attaches its store; see :meth:`attach_store`).
        retry, timeout, limits, client, async_client, transport, async_transport: as for
            :class:`~eki_whatsapp.providers.MetaCloud`.
    """

    name: ProviderName = "twilio"
    text_limit: int = TWILIO_TEXT_LIMIT

    def __init__(
        self,
        account_sid: str,
        auth_token: str | SecretStr,
        *,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str = _DEFAULT_API,
        content_base_url: str | None = None,
        store: Store | None = None,
        **http: Unpack[HttpOptions],
    ) -> None:
        token = auth_token.get_secret_value() if isinstance(auth_token, SecretStr) else auth_token
        if not account_sid or not account_sid.strip():
            raise ConfigError("Twilio needs the account SID: set TWILIO_ACCOUNT_SID (AC…)")
        if not token or not token.strip():
            raise ConfigError("Twilio needs the auth token: set TWILIO_AUTH_TOKEN")
        if not from_ and not messaging_service_sid:
            raise ConfigError(
                "Twilio needs a sender: set TWILIO_WHATSAPP_NUMBER (e.g. whatsapp:+14155238886) "
                "or TWILIO_MESSAGING_SERVICE_SID"
            )
        super().__init__(**http)
        self.account_sid = account_sid.strip()
        self._token = SecretStr(token.strip())
        self.from_ = _whatsapp_address(parse_recipient(self.name, from_)) if from_ else None
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.base_url = base_url.rstrip("/")
        self._account_url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}"
        # Parsed once: httpx parses a URL given as text on every request (half its cost).
        self._messages_url = httpx.URL(f"{self._account_url}/Messages.json")
        # The headers of every form post, built once (httpx normalises a dict on each request).
        self._form_headers = httpx.Headers({**self._auth(), "Content-Type": _FORM})
        self._base_host = (urlsplit(self.base_url).hostname or "").lower()
        if content_base_url is None:
            # Twilio's own hosts (regional edges included) serve no Content API: that lives on
            # content.twilio.com. Any other base URL is a fake or a proxy that serves both.
            twilio_host = self._base_host == "twilio.com" or self._base_host.endswith(".twilio.com")
            content_base_url = _DEFAULT_CONTENT_API if twilio_host else self.base_url
        self.content_base_url = content_base_url.rstrip("/")
        #: ContentSids of on-demand session content, by content hash (shared through the store).
        self.content_cache = ContentCache(store)
        self.store: Store | None = store

    def attach_store(self, store: Store) -> None:
        """Share ``store``: the content cache and the pushed templates live there."""
        self.store = store
        self.content_cache.store = store

    # --- what Twilio can carry --------------------------------------------------------------
    def unsupported_reason(self, message: Message | str) -> str | None:
        """Why Twilio cannot send ``message`` (``None``: it can). Decided without a request."""
        return unsupported_reason(coerce(message), self._template_sid)

    def supports(self, message: Message | str) -> bool:
        """Whether Twilio can carry ``message`` (the router asks before choosing a provider)."""
        return self.unsupported_reason(message) is None

    def _template_sid(self, template: Template) -> str | None:
        if template.content_sid:
            return template.content_sid
        if self.store is None:
            return None
        from ...templates.registry import approved_id

        return approved_id(self.store, self.name, template.name, template.language)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Twilio:
        """Build from :class:`~eki_whatsapp.Settings` (``TWILIO_*``); ``options`` go to ``__init__``."""
        if not settings.twilio_account_sid or settings.twilio_auth_token is None:
            raise ConfigError(
                "Twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio Console > Account)"
            )
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_=settings.twilio_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            status_callback=settings.twilio_status_callback_url,
            base_url=settings.twilio_api_base_url,
            **options,
        )

    @property
    def business_number(self) -> str:
        """The sender's digits without ``+`` (``"14155238886"``), as in ``InboundMessage.recipient``.

        With only a Messaging Service configured, its SID.
        """
        if self.from_:
            return normalize(self.from_)
        return str(self.messaging_service_sid)

    def __repr__(self) -> str:
        return f"Twilio(account_sid={self.account_sid!r}, from_={self.from_!r})"

    # --- requests -------------------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        pair = f"{self.account_sid}:{self._token.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    def forms(self, to: str, message: Message, correlation: str | None = None) -> list[Form]:
        """The form fields :meth:`send` posts for ``message`` (several for a long text).

        With ``correlation`` and a ``status_callback``, each ``StatusCallback`` URL carries the
        key (``eki_ref=<key>``, :func:`part_key` per part), which comes back with its statuses.

        Raises :class:`~eki_whatsapp.providers.UnsupportedMessage` (or ``TemplateError`` for a
        template without ``content_sid``) before anything is sent.
        """
        recipient = parse_recipient(self.name, to)
        if getattr(message, "reply_to", None):
            logger.debug("twilio cannot quote a message: reply_to=%s is not sent", message.reply_to)
        fields = render(self.name, self._template_sid, message)
        if isinstance(fields, str):  # a body that may need splitting
            parts = split(fields, self.text_limit)
            return [[*self._base(recipient, correlation, i), ("Body", part)] for i, part in enumerate(parts)]
        if isinstance(fields, tuple):  # (media header fields, text body)
            media_fields, body = fields
            parts = split(body, self.text_limit)
            forms = [[*self._base(recipient, correlation), ("Body", parts[0]), *media_fields]]
            for index, part in enumerate(parts[1:], 1):
                forms.append([*self._base(recipient, correlation, index), ("Body", part)])
            return forms
        return [self._base(recipient, correlation) + fields]

    def _base(self, recipient: Address, correlation: str | None = None, part: int = 0) -> Form:
        form: Form = [("To", _whatsapp_address(recipient))]
        if self.messaging_service_sid:
            form.append(("MessagingServiceSid", self.messaging_service_sid))
        if self.from_:
            form.append(("From", self.from_))
        if self.status_callback:
            form.append(("StatusCallback", self._callback(correlation, part)))
        return form

    def _callback(self, correlation: str | None, part: int) -> str:
        """The ``StatusCallback`` URL, with the correlation key of the part in its query."""
        url = self.status_callback or ""
        key = part_key(correlation, part)
        if key is None:
            return url
        return f"{url}{'&' if '?' in url else '?'}{urlencode({CORRELATION_PARAM: key})}"

    def _keys(self, correlation: str | None, forms: list[Form]) -> list[str | None]:
        """The correlation key each form carries (none without a ``StatusCallback``)."""
        if not self.status_callback:
            return [None] * len(forms)
        return [part_key(correlation, index) for index in range(len(forms))]

    def _post_form(self, form: Form) -> Callable[[], httpx.Request]:
        content = urlencode(form).encode()
        headers = self._form_headers
        url = self._messages_url

        def build() -> httpx.Request:
            return httpx.Request("POST", url, content=content, headers=headers)

        return build

    def _send_plan(self, to: str, message: Message, correlation: str | None = None) -> Plan[SendReceipt]:
        kind = str(getattr(message, "kind", ""))
        session = session_content(message)
        if session is None:
            forms = self.forms(to, message, correlation)
            builds = [self._post_form(form) for form in forms]
            keys = self._keys(correlation, forms)
            return (yield from self._send_all(to, kind, builds, self._parse_send, keys))
        # Real buttons: the content's SID (cached, or created now), else numbered text.
        recipient = parse_recipient(self.name, to)
        key = session.key
        sid = self.content_cache.get(key)
        rendering = "content:cached"
        if sid is None:
            try:
                sid = yield from create_content_plan(self, key, session.content)
            except ProviderError as exc:
                logger.warning(
                    "twilio: the Content API refused %s content (%s: %s); sending numbered text",
                    kind,
                    type(exc).__name__,
                    exc,
                )
                sid, rendering = None, "numbered-text"
            else:
                self.content_cache.put(key, sid)
                rendering = "content:created"
        if sid is None:
            forms = self.forms(to, message, correlation)
        else:
            variables = content_variables_json(session.variables)
            forms = [[*self._base(recipient, correlation), *content_form(sid, variables)]]
        builds = [self._post_form(form) for form in forms]
        logger.info("twilio: %s sent as %s%s", kind, rendering, f" ({sid})" if sid else "")
        keys = self._keys(correlation, forms)
        receipt = yield from self._send_all(to, kind, builds, self._parse_send, keys)
        return dataclasses.replace(receipt, rendering=rendering)

    # --- templates (docs/wire.md §9.1; the requests: providers/twilio/templates.py) -------------
    def create_template(self, definition: TemplateDefinition) -> RemoteTemplate:
        """Create the content of ``definition`` and submit it for WhatsApp approval."""
        result: RemoteTemplate = self._run(templates.create_plan(self, definition))
        return result

    def update_template(self, remote_id: str, definition: TemplateDefinition) -> RemoteTemplate:
        """Content cannot be edited: a changed definition is new content, submitted again (the
        old content stays in the account, unused)."""
        return self.create_template(definition)

    def fetch_template(
        self, definition: TemplateDefinition, remote_id: str | None = None
    ) -> RemoteTemplate | None:
        """The approval status of content ``remote_id`` (``None`` without an id)."""
        if not remote_id:
            return None
        result: RemoteTemplate = self._run(templates.fetch_plan(self, remote_id))
        return result

    # --- media (providers/twilio/media.py) ------------------------------------------------------
    def _download_plan(self, ref: MediaRef) -> Plan[bytes]:
        return download_plan(self, ref)

    def _parse_send(self, response: httpx.Response) -> Accepted:
        data = json_body(response)
        if response.is_success and isinstance(data, dict) and data.get("sid"):
            return Accepted(str(data["sid"]), str(data.get("status") or "queued"), data)
        raise self._error(response, data)

    def _error(self, response: httpx.Response, data: Any, *, media: bool = False) -> ProviderError:
        """The typed error for a failed Twilio response (``{code, message, more_info, status}``)."""
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        status = response.status_code
        code: int | None = None
        text = ""
        if isinstance(data, dict):
            raw_code = data.get("code")
            if isinstance(raw_code, int) or (isinstance(raw_code, str) and raw_code.isdigit()):
                code = int(raw_code)
            text = str(data.get("message") or "")
            if data.get("more_info"):
                text += f" ({data['more_info']})"
        if not text:
            text = (
                "Twilio answered without a message SID"
                if response.is_success
                else f"HTTP {status} {response.reason_phrase}".strip()
            )
        return self._failure(text, response, data, code=code, retry_after=retry_after, media=media)


# --------------------------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------------------------
def _whatsapp_address(recipient: Address) -> str:
    return f"whatsapp:{recipient.value}" if recipient.is_bsuid else f"whatsapp:+{recipient.value}"
