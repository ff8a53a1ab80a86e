"""Message templates on Meta: the ``message_templates`` API and the template webhooks.

* :func:`creation_body` — a :class:`~eki_whatsapp.templates.TemplateDefinition` as the body of
  ``POST /{WABA-ID}/message_templates`` (and of the edit, ``POST /{template-id}``);
* :func:`remote` — a template object of that API as a neutral
  :class:`~eki_whatsapp.templates.RemoteTemplate`;
* :func:`template_change` — ``message_template_status_update`` / ``template_category_update``
  webhooks as a neutral :class:`~eki_whatsapp.templates.registry.TemplateChange`.

Shapes: docs/wire.md §4.10.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from ...errors import ConfigError
from ...events import ChangeEvent
from ...templates.definition import (
    CopyCodeButton,
    HeaderMedia,
    HeaderText,
    PhoneButton,
    QuickReply,
    RemoteTemplate,
    TemplateDefinition,
    UrlButton,
    substitute,
)
from ...templates.registry import TemplateChange
from .._common import json_body
from .._http import Attempts, Plan, exchange

if TYPE_CHECKING:
    from .send import MetaCloud

__all__ = [
    "STATUS_FIELDS",
    "create_plan",
    "creation_body",
    "fetch_plan",
    "remote",
    "template_change",
    "update_plan",
]

#: Webhook fields that change a template's state.
STATUS_FIELDS = ("message_template_status_update", "template_category_update")


def creation_body(definition: TemplateDefinition, *, with_name: bool = True) -> dict[str, Any]:
    """The JSON Meta expects to create (``with_name``) or edit a template."""
    components: list[dict[str, Any]] = []
    header = definition.header
    if isinstance(header, HeaderText):
        component: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": header.text}
        if header.example:
            component["example"] = {"header_text": [header.example]}
        components.append(component)
    elif isinstance(header, HeaderMedia):
        components.append(
            {
                "type": "HEADER",
                "format": header.format.upper(),
                "example": {"header_handle": [header.handle or header.url]},
            }
        )
    body: dict[str, Any] = {"type": "BODY", "text": definition.body}
    if definition.examples:
        if isinstance(definition.examples, Mapping):
            body["example"] = {
                "body_text_named_params": [
                    {"param_name": name, "example": definition.examples[name]}
                    for name in definition.variables
                ]
            }
        else:
            body["example"] = {"body_text": [list(definition.examples)]}
    components.append(body)
    if definition.footer is not None:
        components.append({"type": "FOOTER", "text": definition.footer})
    if definition.buttons:
        buttons: list[dict[str, Any]] = []
        for button in definition.buttons:
            if isinstance(button, QuickReply):
                buttons.append({"type": "QUICK_REPLY", "text": button.text})
            elif isinstance(button, UrlButton):
                item: dict[str, Any] = {"type": "URL", "text": button.text, "url": button.url}
                if button.example:
                    item["example"] = [substitute(button.url, [button.example])]
                buttons.append(item)
            elif isinstance(button, PhoneButton):
                buttons.append({"type": "PHONE_NUMBER", "text": button.text, "phone_number": button.phone})
            elif isinstance(button, CopyCodeButton):
                buttons.append({"type": "COPY_CODE", "example": button.example})
        components.append({"type": "BUTTONS", "buttons": buttons})
    out: dict[str, Any] = {}
    if with_name:
        out.update({"name": definition.name, "language": definition.language})
    out["category"] = definition.category
    if definition.named:
        out["parameter_format"] = "NAMED"
    out["components"] = components
    return out


def remote(data: Mapping[str, Any], *, fallback_id: str | None = None) -> RemoteTemplate:
    """A template object (create answer, list item) as a :class:`RemoteTemplate`."""
    reason = data.get("rejected_reason")
    return RemoteTemplate(
        id=str(data.get("id") or fallback_id or ""),
        status=str(data.get("status") or "pending").lower(),
        category=str(data["category"]).upper() if data.get("category") else None,
        reason=str(reason) if reason and str(reason).upper() != "NONE" else None,
    )


def template_change(event: ChangeEvent) -> TemplateChange | None:
    """What a template webhook says (``None`` for other fields or an unreadable value)."""
    if event.field not in STATUS_FIELDS:
        return None
    value = event.raw
    name = value.get("message_template_name")
    language = value.get("message_template_language")
    template_id = value.get("message_template_id")
    if not name and template_id is None:
        return None
    if event.field == "message_template_status_update":
        reason = value.get("reason")
        info = value.get("other_info")
        if isinstance(info, Mapping) and info.get("description"):
            reason = (
                f"{reason}: {info['description']}" if reason and reason != "NONE" else info["description"]
            )
        return TemplateChange(
            provider="meta",
            name=str(name) if name else None,
            language=str(language) if language else None,
            id=str(template_id) if template_id is not None else None,
            status=str(value.get("event") or "").lower() or None,
            reason=str(reason) if reason and str(reason).upper() != "NONE" else None,
        )
    category = value.get("new_category") or value.get("correct_category")
    return TemplateChange(
        provider="meta",
        name=str(name) if name else None,
        language=str(language) if language else None,
        id=str(template_id) if template_id is not None else None,
        category=str(category).upper() if category else None,
    )


# --- the requests (MetaCloud.create_template / update_template / fetch_template) -------------------
def _waba(cloud: MetaCloud) -> str:
    if not cloud.business_account_id:
        raise ConfigError(
            "managing templates on Meta needs the WhatsApp Business Account id: set "
            "META_BUSINESS_ACCOUNT_ID (WhatsApp Manager > Account tools)"
        )
    return cloud.business_account_id


def _plan(
    cloud: MetaCloud, method: str, url: str, payload: Mapping[str, Any] | None, pick: Callable[[Any], Any]
) -> Plan[Any]:
    build = (
        cloud._post_json(url, payload)
        if payload is not None
        else (lambda: httpx.Request(method, url, headers=cloud._auth()))
    )

    def parse(response: httpx.Response) -> Any:
        data = json_body(response)
        if response.is_success and isinstance(data, dict):
            return pick(data)
        raise cloud._error(response, data)

    return exchange(cloud.name, build, parse, cloud.retry, Attempts())


def create_plan(cloud: MetaCloud, definition: TemplateDefinition) -> Plan[RemoteTemplate]:
    """Submit a template for review (``POST /{WABA-ID}/message_templates``)."""
    url = f"{cloud._api}/{_waba(cloud)}/message_templates"
    return _plan(cloud, "POST", url, creation_body(definition), remote)


def update_plan(cloud: MetaCloud, remote_id: str, definition: TemplateDefinition) -> Plan[RemoteTemplate]:
    """Edit a template (``POST /{template-id}``): it goes back to review."""

    def pick(data: Any) -> RemoteTemplate:
        return RemoteTemplate(id=remote_id, status="pending", category=definition.category)

    body = creation_body(definition, with_name=False)
    return _plan(cloud, "POST", f"{cloud._api}/{remote_id}", body, pick)


def fetch_plan(
    cloud: MetaCloud, definition: TemplateDefinition, remote_id: str | None = None
) -> Plan[RemoteTemplate | None]:
    """The template's status as Meta reports it now (``None``: Meta has no such template)."""
    query = urlencode({"name": definition.name, "fields": "id,name,language,status,category,rejected_reason"})
    url = f"{cloud._api}/{_waba(cloud)}/message_templates?{query}"

    def pick(data: Any) -> RemoteTemplate | None:
        for item in data.get("data") or ():
            if not isinstance(item, dict):
                continue
            if (remote_id and str(item.get("id")) == remote_id) or (
                item.get("name") == definition.name and item.get("language") == definition.language
            ):
                return remote(item)
        return None

    return _plan(cloud, "GET", url, None, pick)
