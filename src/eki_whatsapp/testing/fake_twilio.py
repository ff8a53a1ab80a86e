"""A fake Twilio Programmable Messaging API on 127.0.0.1 (docs/wire.md §7.3, §9)."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from ._errors import twilio_code_and_status, twilio_error_body
from ._fake import (
    SentMessage,
    basic_credentials,
    json_reply,
    media_reply,
)
from ._fake_rules import normalize_address
from ._fake_twilio_content import TwilioContent
from ._http import RawRequest, Reply
from .payloads import (
    DEFAULT_TWILIO_ACCOUNT_SID,
    DEFAULT_TWILIO_NUMBER,
    Payload,
    new_message_sid,
    twilio_status,
)

__all__ = ["FakeTwilioAPI", "TwilioMedia"]

_API = "/2010-04-01/Accounts"
_ACCOUNT = re.compile(r"^/2010-04-01/Accounts/([^/]+?)(?:\.json)?$")
_MESSAGES = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_MESSAGE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+?)\.json$")
_MEDIA = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)/Media/([^/]+?)(\.json)?$")
_MAX_BODY = 1600


@dataclass(frozen=True, slots=True)
class TwilioMedia:
    """Media a user sent, served at a Twilio-shaped URL by :class:`FakeTwilioAPI`."""

    sid: str
    message_sid: str
    data: bytes
    content_type: str


class FakeTwilioAPI(TwilioContent):
    """A fake Twilio REST API: a real HTTP server on 127.0.0.1 speaking Twilio's shapes.

    Put ``.base_url`` in ``TWILIO_API_BASE_URL`` (with ``.account_sid``, ``.auth_token`` and
    ``.number``)::

        with FakeTwilioAPI(webhook_url=server.url) as twilio:
            settings = Settings(_env_file=None, whatsapp_provider="twilio", **twilio.settings_fields())

    Endpoints: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form, Basic auth) answering 201
    with the Message resource, ``GET …/Messages/{sid}.json``, ``GET /2010-04-01/Accounts/{sid}.json``
    (account lookup) and media URLs ``…/Messages/{MM}/Media/{ME}`` (Basic auth, 307 to the
    content like Twilio). Wrong credentials → 401 code 20003.

    After a message is accepted, statuses ``auto_status`` are posted to its ``StatusCallback`` (or
    ``webhook_url``), signed with the auth token over that URL, in Twilio's status-callback shape.
    """

    provider = "twilio"
    window_code = 63016

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_TWILIO_ACCOUNT_SID,
        auth_token: str = "fake-twilio-auth-token",  # noqa: S107 - a test fixture
        number: str = DEFAULT_TWILIO_NUMBER,
        webhook_url: str | None = None,
        auto_status: Sequence[str] = ("sent", "delivered", "read"),
        api_keys: Mapping[str, str] | None = None,
        enforce_media_auth: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.number = "+" + normalize_address(number)
        #: ``{API key SID (SK…): secret}`` also accepted for Basic auth.
        self.api_keys: dict[str, str] = dict(api_keys or {})
        self.enforce_media_auth = enforce_media_auth
        #: Account lookup fields (``GET /Accounts/{sid}.json``).
        self.account_status = "active"
        self.account_type = "Full"
        self.media: dict[str, TwilioMedia] = {}
        self._resources: dict[str, dict[str, Any]] = {}
        #: Content created through the Content API, by ContentSid (``approval`` once requested).
        self.contents: dict[str, dict[str, Any]] = {}
        #: ``POST /v1/Content`` answers 400 while set (a Content API that refuses).
        self.refuse_content = False
        super().__init__(webhook_url=webhook_url, auto_status=auto_status, host=host, port=port)

    # --- configuration helpers ------------------------------------------------------------------
    def settings_fields(self) -> dict[str, str]:
        """``Settings`` keyword arguments pointing a bot at this fake (lower-case env names)."""
        return {
            "twilio_api_base_url": self.base_url,
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_whatsapp_number": self.number,
        }

    def env(self) -> dict[str, str]:
        """The same as environment variables (``TWILIO_API_BASE_URL=…``)."""
        return {name.upper(): value for name, value in self.settings_fields().items()}

    @property
    def messages_url(self) -> str:
        """``{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json``."""
        return f"{self.base_url}{_API}/{self.account_sid}/Messages.json"

    def add_media(self, data: bytes, content_type: str = "image/jpeg") -> str:
        """Store media as if a user had sent it; returns its URL (for ``twilio_media(url)``)."""
        media = TwilioMedia(new_message_sid("ME"), new_message_sid("MM"), data, content_type)
        with self._state:
            self.media[media.sid] = media
        return f"{self.base_url}{_API}/{self.account_sid}/Messages/{media.message_sid}/Media/{media.sid}"

    # --- FakeProviderAPI hooks -------------------------------------------------------------------
    def _error_reply(self, code: int | None, http_status: int | None, message: str | None) -> Reply:
        code, http_status = twilio_code_and_status(code, http_status)
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if http_status == 401 else {}
        return json_reply(http_status, twilio_error_body(code, http_status, message), headers)

    def _outage_reply(self) -> Reply:
        return json_reply(503, twilio_error_body(20503, 503))

    def _status_payload(self, message: SentMessage, status: str, error_code: int | None) -> Payload:
        body = message.body
        sender = str(body.get("From") or self.number)
        if error_code is None and status in ("failed", "undelivered"):
            error_code = 30500 if status == "failed" else 63024
        return twilio_status(
            message.id,
            status,
            to=message.to,
            sender=sender,
            account_sid=self.account_sid,
            error_code=error_code,
            messaging_service_sid=body.get("MessagingServiceSid"),
        )

    def _status_target(self, message: SentMessage) -> tuple[str | None, str | None]:
        return message.callback_url or self.webhook_url, self.auth_token

    def _on_status(self, message: SentMessage, status: str) -> None:
        with self._state:
            resource = self._resources.get(message.id)
            if resource is not None:
                resource["status"] = status
                resource["date_updated"] = _rfc2822()
                if status == "sent":
                    resource["date_sent"] = resource["date_updated"]

    # --- routing -------------------------------------------------------------------------------
    def _route(self, request: RawRequest) -> Reply:
        if request.path.startswith("/media-content/"):
            return self._media_content(request)
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        path, method = request.path, request.method
        if path.startswith("/v1/Content"):
            return self._content_api(request)
        match = _MESSAGES.match(path)
        if match and method == "POST":
            return self._create(request) if self._own(match.group(1)) else self._error_reply(20003, 401, None)
        match = _MEDIA.match(path)
        if match and method == "GET" and self._own(match.group(1)):
            return self._media_redirect(match.group(3))
        match = _MESSAGE.match(path)
        if match and method == "GET" and self._own(match.group(1)):
            with self._state:
                resource = self._resources.get(match.group(2))
            return json_reply(200, resource) if resource else self._not_found(path)
        match = _ACCOUNT.match(path)
        if match and method == "GET" and self._own(match.group(1)):
            return json_reply(200, self._account())
        return self._not_found(path)

    def _own(self, sid: str) -> bool:
        return sid == self.account_sid

    def _not_found(self, path: str) -> Reply:
        return self._error_reply(20404, 404, f"The requested resource {path} was not found")

    def _check_auth(self, request: RawRequest) -> Reply | None:
        creds = basic_credentials(request.header("authorization"))
        if creds is not None:
            user, password = creds
            expected = self.auth_token if user == self.account_sid else self.api_keys.get(user)
            if expected is not None and hmac.compare_digest(password.encode(), expected.encode()):
                return None
        return self._error_reply(20003, 401, "Authenticate")

    def _create(self, request: RawRequest) -> Reply:
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return self._error_reply(21602, 400, "The request body is not valid form data.")
        params: dict[str, Any] = {}
        media_urls: list[str] = []
        for key, value in pairs:
            if key == "MediaUrl":
                media_urls.append(value)
            else:
                params[key] = value
        if media_urls:
            params["MediaUrl"] = media_urls
        to = params.get("To") or ""
        sender = params.get("From") or ""
        service = params.get("MessagingServiceSid") or ""
        body = params.get("Body") or ""
        content_sid = params.get("ContentSid") or ""
        if not to:
            return self._error_reply(21604, 400, None)
        if not sender and not service:
            return self._error_reply(21603, 400, None)
        if not body and not media_urls and not content_sid:
            return self._error_reply(21602, 400, None)
        if params.get("ContentVariables") and not content_sid:
            return self._error_reply(21654, 400, None)
        variables: Any = None
        if content_sid and params.get("ContentVariables"):
            try:
                variables = json.loads(params["ContentVariables"])
            except ValueError:
                variables = None
            if not isinstance(variables, dict):
                return self._error_reply(21656, 400, None)
        if len(body) > _MAX_BODY:
            return self._error_reply(21617, 400, None)
        channel_to = to.lower().startswith("whatsapp:")
        if sender and channel_to != sender.lower().startswith("whatsapp:"):
            return self._error_reply(21910, 400, None)
        if sender and normalize_address(sender) != normalize_address(self.number):
            return self._error_reply(
                63007, 400, f"Twilio could not find a Channel with the specified From address: {sender}"
            )
        recipient = normalize_address(to)
        if not recipient or (recipient.isdigit() and not 7 <= len(recipient) <= 15):
            return self._error_reply(21211, 400, f"The 'To' number {to} is not a valid phone number.")
        failure = self._take_failure(recipient)
        if failure is not None:
            return failure
        sid = new_message_sid("MM" if media_urls else "SM")
        with self._state:
            content = self.contents.get(content_sid) if content_sid else None
        if content is not None and content.get("approval") is None:
            # session content (buttons, a list, a URL button): the text is its body, filled in
            rich = next(iter(content["types"].values()))
            body = body or _fill(str(rich.get("body") or rich.get("title") or ""), variables or {})
        kind = (
            "interactive"
            if content is not None and content.get("approval") is None
            else "template"
            if content_sid
            else "media"
            if media_urls
            else "location"
            if (params.get("PersistentAction", "").startswith("geo:"))
            else "text"
        )
        message = SentMessage(
            "twilio",
            sid,
            to.removeprefix("whatsapp:") if channel_to else to,
            kind,
            body or None,
            params,
            status="accepted" if service and not sender else "queued",
            callback_url=params.get("StatusCallback") or None,
        )
        resource = self._resource(message, sender or None, service or None, len(media_urls))
        with self._state:
            self._resources[sid] = resource
        reply = json_reply(201, resource)
        reply.after = self._accept(message)
        return reply

    def _resource(
        self, message: SentMessage, sender: str | None, service: str | None, num_media: int
    ) -> dict[str, Any]:
        now = _rfc2822()
        uri = f"{_API}/{self.account_sid}/Messages/{message.id}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": message.text or "",
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": str(num_media),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message.id,
            "status": message.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": message.body.get("To"),
            "uri": f"{uri}.json",
        }

    def _account(self) -> dict[str, Any]:
        now = _rfc2822()
        return {
            "sid": self.account_sid,
            "friendly_name": "Eki Test Account",
            "status": self.account_status,
            "type": self.account_type,
            "date_created": now,
            "date_updated": now,
            "owner_account_sid": self.account_sid,
            "uri": f"{_API}/{self.account_sid}.json",
        }

    def _media_redirect(self, media_sid: str) -> Reply:
        with self._state:
            media = self.media.get(media_sid)
        if media is None:
            return self._not_found(media_sid)
        return Reply(307, {"Location": f"{self.base_url}/media-content/{media.sid}"})

    def _media_content(self, request: RawRequest) -> Reply:
        with self._state:
            media = self.media.get(request.path.rsplit("/", 1)[-1])
        return media_reply(None if media is None else (media.content_type, media.data))

    def _serve(self, request: RawRequest) -> Reply:
        # media URLs are public when "enforce HTTP auth on media URLs" is off
        if not self.enforce_media_auth and request.method == "GET" and _MEDIA.match(request.path):
            match = _MEDIA.match(request.path)
            assert match is not None
            return self._media_redirect(match.group(3))
        return super()._serve(request)


def _fill(text: str, variables: Mapping[str, Any]) -> str:
    """``{{n}}`` placeholders of content replaced by ``ContentVariables``."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(variables.get(m.group(1), m.group(0))), text)


def _rfc2822() -> str:
    return format_datetime(datetime.now(timezone.utc), usegmt=True)
