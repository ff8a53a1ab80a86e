"""The Content API of :class:`~eki_whatsapp.testing.FakeTwilioAPI` (content templates and their
WhatsApp approval, served on the fake's own port) and :meth:`~TwilioContent.tap`, a user
tapping a button of a rich message."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._fake import FakeProviderAPI, WebhookDelivery, json_reply
from ._http import RawRequest, Reply
from .payloads import twilio_button, twilio_list_reply

# The Content API (content.twilio.com in production; this fake serves it on the same port)
_CONTENTS = re.compile(r"^/v1/Content/?$")
_CONTENT = re.compile(r"^/v1/Content/(HX[0-9a-fA-F]+)/?$")
_APPROVAL_CREATE = re.compile(r"^/v1/Content/(HX[0-9a-fA-F]+)/ApprovalRequests/whatsapp/?$")
_APPROVAL_FETCH = re.compile(r"^/v1/Content/(HX[0-9a-fA-F]+)/ApprovalRequests/?$")
#: Rich types the fake renders as buttons a user can tap (:meth:`FakeTwilioAPI.tap`).
_TAPPABLE = ("twilio/quick-reply", "twilio/list-picker")


class TwilioContent(FakeProviderAPI):
    """The Content API, for :class:`~eki_whatsapp.testing.FakeTwilioAPI`."""

    account_sid: str
    auth_token: str
    number: str
    #: Content templates by sid (``POST /v1/Content``...).
    contents: dict[str, dict[str, Any]]
    refuse_content: bool

    if TYPE_CHECKING:

        def _not_found(self, path: str) -> Reply: ...

    def _content_api(self, request: RawRequest) -> Reply:
        path, method = request.path, request.method
        if _CONTENTS.match(path) and method == "POST":
            return self._create_content(request)
        match = _CONTENT.match(path)
        if match and method == "GET":
            with self._state:
                content = self.contents.get(match.group(1))
            return json_reply(200, self._content_resource(content)) if content else self._not_found(path)
        match = _APPROVAL_CREATE.match(path)
        if match and method == "POST":
            return self._request_approval(request, match.group(1))
        match = _APPROVAL_FETCH.match(path)
        if match and method == "GET":
            with self._state:
                content = self.contents.get(match.group(1))
            if content is None:
                return self._not_found(path)
            return json_reply(
                200,
                {
                    "sid": content["sid"],
                    "account_sid": self.account_sid,
                    "whatsapp": dict(content.get("approval") or {"status": "unsubmitted"}),
                    "url": f"{self.base_url}{path}",
                },
            )
        return self._not_found(path)

    def _create_content(self, request: RawRequest) -> Reply:
        if self.refuse_content:
            return self._error_reply(20001, 400, "Invalid content: the Content API refused it (fake)")
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("types"), dict) or not body["types"]:
            return self._error_reply(20001, 400, "Content must have at least one type")
        if not body.get("language"):
            return self._error_reply(20001, 400, "Missing required parameter language")
        quick = body["types"].get("twilio/quick-reply")
        if isinstance(quick, dict) and not 1 <= len(quick.get("actions") or ()) <= 10:
            return self._error_reply(20001, 400, "twilio/quick-reply needs 1 to 10 actions")
        sid = "HX" + secrets.token_hex(16)
        content = {
            "sid": sid,
            "friendly_name": body.get("friendly_name") or sid,
            "language": body["language"],
            "variables": body.get("variables") or {},
            "types": body["types"],
            "approval": None,
        }
        with self._state:
            self.contents[sid] = content
        return json_reply(201, self._content_resource(content))

    def _content_resource(self, content: Mapping[str, Any]) -> dict[str, Any]:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        sid = content["sid"]
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "friendly_name": content["friendly_name"],
            "language": content["language"],
            "variables": content["variables"],
            "types": content["types"],
            "date_created": now,
            "date_updated": now,
            "url": f"{self.base_url}/v1/Content/{sid}",
            "links": {
                "approval_create": f"{self.base_url}/v1/Content/{sid}/ApprovalRequests/whatsapp",
                "approval_fetch": f"{self.base_url}/v1/Content/{sid}/ApprovalRequests",
            },
        }

    def _request_approval(self, request: RawRequest, sid: str) -> Reply:
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not body.get("name") or not body.get("category"):
            return self._error_reply(20001, 400, "Missing required parameter name or category")
        with self._state:
            content = self.contents.get(sid)
            if content is None:
                return self._not_found(request.path)
            content["approval"] = {
                "name": body["name"],
                "category": str(body["category"]).upper(),
                "content_type": next(iter(content["types"])),
                "status": "received",
                "rejection_reason": "",
                "allow_category_change": True,
            }
            answer = dict(content["approval"])
        return json_reply(201, answer)

    def content_named(self, name: str) -> dict[str, Any]:
        """The newest content whose approval request is called ``name`` (KeyError when none)."""
        with self._state:
            found = [c for c in self.contents.values() if (c.get("approval") or {}).get("name") == name]
        if not found:
            raise KeyError(f"no content submitted for approval as {name!r}")
        return found[-1]

    def set_approval(self, name_or_sid: str, status: str, *, reason: str | None = None) -> dict[str, Any]:
        """Review content: set its WhatsApp approval ``status`` (``approved``, ``rejected``,
        ``paused``...). Twilio has no webhook for this: ``templates status`` polls it."""
        content = self.contents.get(name_or_sid) or self.content_named(name_or_sid)
        with self._state:
            approval = content.get("approval")
            if approval is None:
                raise KeyError(f"content {content['sid']} was never submitted for approval")
            approval["status"] = status.lower()
            approval["rejection_reason"] = reason or ""
        return content

    def tap(self, message_sid: str, choice: str | int = 0, *, sender: str | None = None) -> WebhookDelivery:
        """The user taps a button (or picks a list row) of a message sent as quick-reply or
        list-picker content: the inbound webhook is posted, signed, to ``webhook_url``.

        ``choice`` is the button's index, id or title.
        """
        message = self.message(message_sid)
        content = self.contents.get(str(message.body.get("ContentSid") or ""))
        rich = next((content["types"][t] for t in _TAPPABLE if content and t in content["types"]), None)
        if rich is None:
            raise ValueError(
                f"message {message_sid} has no buttons to tap (sent without quick-reply content)"
            )
        options = [(a.get("id") or a.get("title"), a.get("title")) for a in rich.get("actions") or ()]
        options += [(i.get("id"), i.get("item")) for i in rich.get("items") or ()]
        picked = options[choice] if isinstance(choice, int) else next(o for o in options if choice in o)
        who = sender or message.to
        if "items" in rich:
            payload = twilio_list_reply(
                str(picked[0]), str(picked[1]), sender=who, to=self.number, reply_to=message_sid
            )
        else:
            payload = twilio_button(
                str(picked[0]), str(picked[1]), sender=who, to=self.number, reply_to=message_sid
            )
        return self._post_webhook(
            self.webhook_url, self.auth_token, payload, message_sid, "tap", refusals_fail=False
        )
