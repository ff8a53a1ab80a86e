"""Message templates on Twilio: Content API content plus a WhatsApp approval request.

* :func:`content_body` — a :class:`~eki_whatsapp.templates.TemplateDefinition` as the body of
  ``POST https://content.twilio.com/v1/Content``; the type follows the definition:
  ``twilio/card`` (a media header or a footer), ``twilio/quick-reply`` (quick replies),
  ``twilio/call-to-action`` (URL/phone/copy-code buttons), ``twilio/media`` or ``twilio/text``.
  A text header has no place in these types: it leads the body, in bold.
* :func:`approval_body` — ``POST /v1/Content/{sid}/ApprovalRequests/whatsapp``;
* :func:`remote` — the ``whatsapp`` object of ``GET /v1/Content/{sid}/ApprovalRequests`` (or of
  the approval answer) as a :class:`~eki_whatsapp.templates.RemoteTemplate`.

Shapes: docs/wire.md §9.1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...templates.definition import (
    CopyCodeButton,
    HeaderMedia,
    HeaderText,
    PhoneButton,
    QuickReply,
    RemoteTemplate,
    TemplateDefinition,
    UrlButton,
)
from ...templates.registry import approved_id
from .._http import Plan
from .content_api import content_request

if TYPE_CHECKING:
    from ...store.base import Store
    from .send import Twilio

__all__ = [
    "approval_body",
    "content_body",
    "content_sid_for",
    "create_plan",
    "fetch_plan",
    "remote",
]

#: Twilio says ``received`` for an approval request not yet looked at: that is pending to us.
_STATUS = {"received": "pending", "unsubmitted": "pending"}


def content_sid_for(store: Store, name: str, language: str) -> str | None:
    """Twilio's ContentSid of an approved managed template (``None`` otherwise)."""
    return approved_id(store, "twilio", name, language)


def _body(definition: TemplateDefinition) -> str:
    if isinstance(definition.header, HeaderText):
        return f"*{definition.header.text}*\n\n{definition.body}"
    return definition.body


def _actions(definition: TemplateDefinition, *, card: bool) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    for button in definition.buttons:
        if isinstance(button, QuickReply):
            item: dict[str, Any] = {"title": button.text, "id": button.text}
            if card:
                item = {"type": "QUICK_REPLY", **item}
            actions.append(item)
        elif isinstance(button, UrlButton):
            actions.append({"type": "URL", "title": button.text, "url": button.url})
        elif isinstance(button, PhoneButton):
            actions.append({"type": "PHONE_NUMBER", "title": button.text, "phone": button.phone})
        elif isinstance(button, CopyCodeButton):
            actions.append({"type": "COPY_CODE", "title": "Copy code", "code": button.example})
    return actions


def content_body(definition: TemplateDefinition) -> dict[str, Any]:
    """The Content API create body for ``definition``."""
    body = _body(definition)
    media = definition.header.url if isinstance(definition.header, HeaderMedia) else None
    types: dict[str, Any]
    if media is not None and not definition.buttons and definition.footer is None:
        types = {"twilio/media": {"body": body, "media": [media]}}
    elif media is not None or definition.footer is not None:
        card: dict[str, Any] = {"title": body}
        if definition.footer is not None:
            card["subtitle"] = definition.footer
        if media is not None:
            card["media"] = [media]
        if definition.buttons:
            card["actions"] = _actions(definition, card=True)
        types = {"twilio/card": card}
    elif definition.buttons and all(isinstance(b, QuickReply) for b in definition.buttons):
        types = {"twilio/quick-reply": {"body": body, "actions": _actions(definition, card=False)}}
    elif definition.buttons:
        types = {"twilio/call-to-action": {"body": body, "actions": _actions(definition, card=True)}}
    else:
        types = {"twilio/text": {"body": body}}
    if isinstance(definition.examples, Mapping):
        variables = dict(definition.examples)
    else:
        variables = {str(i + 1): value for i, value in enumerate(definition.examples)}
    return {
        "friendly_name": f"{definition.name}_{definition.language}".lower(),
        "language": definition.language,
        "variables": variables,
        "types": types,
    }


def approval_body(definition: TemplateDefinition) -> dict[str, Any]:
    """The WhatsApp approval request for content made from ``definition``."""
    return {"name": definition.name, "category": definition.category}


def remote(content_sid: str, approval: Mapping[str, Any]) -> RemoteTemplate:
    """An approval object (``whatsapp`` of the approval fetch, or the create answer)."""
    status = str(approval.get("status") or "pending").lower()
    reason = approval.get("rejection_reason")
    category = approval.get("category")
    return RemoteTemplate(
        id=content_sid,
        status=_STATUS.get(status, status),
        category=str(category).upper() if category else None,
        reason=str(reason) if reason else None,
    )


# --- the requests (Twilio.create_template / fetch_template) ----------------------------------------
def create_plan(twilio: Twilio, definition: TemplateDefinition) -> Plan[RemoteTemplate]:
    """Create the content of ``definition`` and submit it for WhatsApp approval."""
    sid: str = yield from content_request(
        twilio, "POST", "/v1/Content", content_body(definition), lambda data: str(data["sid"])
    )
    approval: dict[str, Any] = yield from content_request(
        twilio, "POST", f"/v1/Content/{sid}/ApprovalRequests/whatsapp", approval_body(definition), lambda d: d
    )
    return remote(sid, approval)


def fetch_plan(twilio: Twilio, sid: str) -> Plan[RemoteTemplate]:
    """The approval status of content ``sid``."""

    def pick(data: dict[str, Any]) -> RemoteTemplate:
        approval = data.get("whatsapp")
        return remote(sid, approval if isinstance(approval, dict) else {})

    return content_request(twilio, "GET", f"/v1/Content/{sid}/ApprovalRequests", None, pick)
