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

* ``Buttons`` / ``ListMenu`` with a ``content_sid`` go out as that Content Template; without one
  they become numbered text (``1. Yes``) — ``Buttons.match()`` maps the answer back.
* ``Template`` needs a ``content_sid`` (``HX…``); ``ContentVariables`` is sent as a JSON string.
* ``Location`` is sent as ``PersistentAction=geo:lat,lon|label`` with the place as ``Body``.
* ``Media`` needs a public URL (Meta media ids are refused); the caption is the ``Body``.
* ``Reaction`` is refused (:class:`~eki_whatsapp.providers.UnsupportedMessage`).
* ``reply_to`` cannot be expressed through the Messages API: the message is sent unquoted and
  a debug log line says so.
"""

from __future__ import annotations

import base64
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
from ...messages import Buttons, ListMenu, Location, Media, Reaction, Template, Text
from .._common import Accepted, HttpProvider, json_body, parse_recipient
from .._http import Attempts, Plan, RetryPolicy, exchange, parse_retry_after
from ..base import (
    MediaError,
    ProviderError,
    ProviderName,
    SendReceipt,
    TemplateError,
    UnsupportedMessage,
    classify_error,
)
from .content import Form, content_form, content_variables_json, numbered_text, template_variables

if TYPE_CHECKING:
    from ...settings import Settings

__all__ = ["Twilio"]

logger = logging.getLogger("eki_whatsapp.providers.twilio")

_FORM = "application/x-www-form-urlencoded"


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
        base_url: str = "https://api.twilio.com",
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
        limits: httpx.Limits | None = None,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
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
        super().__init__(
            retry=retry,
            timeout=timeout,
            limits=limits,
            client=client,
            async_client=async_client,
            transport=transport,
            async_transport=async_transport,
        )
        self.account_sid = account_sid.strip()
        self._token = SecretStr(token.strip())
        self.from_ = _whatsapp_address(parse_recipient(self.name, from_)) if from_ else None
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.base_url = base_url.rstrip("/")
        self._account_url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}"
        self._messages_url = f"{self._account_url}/Messages.json"
        self._base_host = (urlsplit(self.base_url).hostname or "").lower()

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

    def forms(self, to: str, message: Any) -> list[Form]:
        """The form fields :meth:`send` posts for ``message`` (several for a long text).

        Raises :class:`~eki_whatsapp.providers.UnsupportedMessage` (or ``TemplateError`` for a
        template without ``content_sid``) before anything is sent.
        """
        recipient = parse_recipient(self.name, to)
        if getattr(message, "reply_to", None):
            logger.debug("twilio cannot quote a message: reply_to=%s is not sent", message.reply_to)
        fields = self._render(message)
        if isinstance(fields, str):  # a body that may need splitting
            return [[*self._base(recipient), ("Body", part)] for part in split(fields, self.text_limit)]
        if isinstance(fields, tuple):  # (media header fields, text body)
            media_fields, body = fields
            parts = split(body, self.text_limit)
            forms = [[*self._base(recipient), ("Body", parts[0]), *media_fields]]
            forms += [[*self._base(recipient), ("Body", part)] for part in parts[1:]]
            return forms
        return [self._base(recipient) + fields]

    def _base(self, recipient: Address) -> Form:
        form: Form = [("To", _whatsapp_address(recipient))]
        if self.messaging_service_sid:
            form.append(("MessagingServiceSid", self.messaging_service_sid))
        if self.from_:
            form.append(("From", self.from_))
        if self.status_callback:
            form.append(("StatusCallback", self.status_callback))
        return form

    def _render(self, message: Any) -> str | Form | tuple[Form, str]:
        if isinstance(message, Text):
            return message.body
        if isinstance(message, Media):
            if message.url is None:
                raise _unsupported(
                    "Twilio sends media by public URL only: pass Media(url=...) instead of a Meta media_id"
                )
            form: Form = [("MediaUrl", message.url)]
            if message.caption:
                form.insert(0, ("Body", message.caption))
            return form
        if isinstance(message, Template):
            if not message.content_sid:
                error = TemplateError(
                    f"Template {message.name!r} has no content_sid: Twilio sends templates as Content "
                    "Templates; create one in Twilio Console > Content Template Builder and pass its "
                    "HX… SID as Template(..., content_sid=...)",
                    provider=self.name,
                )
                error.attempts = 0
                raise error
            return content_form(message.content_sid, content_variables_json(template_variables(message)))
        if isinstance(message, (Buttons, ListMenu)):
            if message.content_sid:
                return content_form(message.content_sid, content_variables_json(message.content_variables))
            text = numbered_text(message)
            header = message.header
            if isinstance(header, Media):
                if header.url is None:
                    raise _unsupported("Twilio needs a public URL for a media header, not a Meta media_id")
                return ([("MediaUrl", header.url)], text)
            return text
        if isinstance(message, Location):
            label = message.name or message.address or ""
            body = ", ".join(p for p in (message.name, message.address) if p) or (
                f"{message.latitude},{message.longitude}"
            )
            action = f"geo:{message.latitude},{message.longitude}"
            if label:
                action += f"|{label}"
            return [("Body", body), ("PersistentAction", action)]
        if isinstance(message, Reaction):
            raise _unsupported("Twilio's Messages API cannot send reactions; send a Text instead")
        raise _unsupported(
            f"cannot send {type(message).__name__}: pass a str or a model from eki_whatsapp.messages"
        )

    def _post_form(self, form: Form) -> Callable[[], httpx.Request]:
        content = urlencode(form).encode()
        headers = {**self._auth(), "Content-Type": _FORM}
        url = self._messages_url

        def build() -> httpx.Request:
            return httpx.Request("POST", url, content=content, headers=headers)

        return build

    def _send_plan(self, to: str, message: Any) -> Plan[SendReceipt]:
        builds = [self._post_form(form) for form in self.forms(to, message)]
        return self._send_all(to, str(getattr(message, "kind", "")), builds, self._parse_send)

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
        if media and code is None and 400 <= status < 500 and status not in (401, 403, 429):
            return MediaError(text, provider=self.name, http_status=status, raw=data)
        return classify_error(
            self.name,
            code,
            text,
            http_status=status,
            raw=data if isinstance(data, dict) else None,
            retry_after=retry_after,
        )

    # --- media ----------------------------------------------------------------------------------
    def _trusted(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        return host == self._base_host or host == "twilio.com" or host.endswith(".twilio.com")

    def _download_plan(self, ref: MediaRef) -> Plan[bytes]:
        if not ref.url:
            raise MediaError("a Twilio media reference needs its MediaUrl", provider=self.name)
        url = ref.url
        # Credentials only go to Twilio's own hosts; its redirect to storage drops them.
        headers = self._auth() if self._trusted(url) else {}

        def parse(response: httpx.Response) -> bytes:
            if response.is_success:
                return response.content
            raise self._error(response, json_body(response), media=True)

        return exchange(
            self.name,
            lambda: httpx.Request("GET", url, headers=headers),
            parse,
            self.retry,
            Attempts(),
            follow_redirects=True,
        )


# --------------------------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------------------------
def _whatsapp_address(recipient: Address) -> str:
    return f"whatsapp:{recipient.value}" if recipient.is_bsuid else f"whatsapp:+{recipient.value}"


def _unsupported(text: str) -> UnsupportedMessage:
    error = UnsupportedMessage(text, provider="twilio")
    error.attempts = 0
    return error
