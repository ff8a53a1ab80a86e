"""The message-template endpoints of :class:`~eki_whatsapp.testing.FakeGraphAPI`
(``POST``/``GET /{waba-id}/message_templates``, ``POST /{template-id}``) and the template
webhooks it posts (status and category changes)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ._fake import FakeProviderAPI, WebhookDelivery, json_reply
from ._http import RawRequest, Reply
from .payloads import meta_change


class GraphTemplates(FakeProviderAPI):
    """Message templates, for :class:`~eki_whatsapp.testing.FakeGraphAPI`."""

    app_secret: str | None
    waba_id: str
    #: Message templates by id (``POST/GET /{waba-id}/message_templates``, ``POST /{id}``).
    templates: dict[str, dict[str, Any]]

    def _create_template(self, request: RawRequest) -> Reply:
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return self._error_reply(100, 400, "(#100) The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self._error_reply(100, 400, "(#100) Invalid parameter")
        for name in ("name", "language", "category", "components"):
            if not body.get(name):
                return self._error_reply(100, 400, f"(#100) The parameter {name} is required.")
        if str(body["category"]).upper() not in ("UTILITY", "MARKETING", "AUTHENTICATION"):
            return self._error_reply(
                100, 400, "(#100) Param category must be one of {UTILITY, MARKETING, AUTHENTICATION}"
            )
        with self._state:
            for template in self.templates.values():
                if template["name"] == body["name"] and template["language"] == body["language"]:
                    return self._error_reply(
                        100,
                        400,
                        f'(#100) Message template "{body["name"]}" already exists in {body["language"]}',
                    )
            template_id = str(10**15 + len(self.templates) + 1)
            self.templates[template_id] = {
                "id": template_id,
                "name": body["name"],
                "language": body["language"],
                "category": str(body["category"]).upper(),
                "status": "PENDING",
                "components": body["components"],
                "parameter_format": body.get("parameter_format", "POSITIONAL"),
            }
        return json_reply(
            200, {"id": template_id, "status": "PENDING", "category": str(body["category"]).upper()}
        )

    def _list_templates(self, request: RawRequest) -> Reply:
        name = request.query_params.get("name")
        with self._state:
            data = [dict(t) for t in self.templates.values() if name is None or name in t["name"]]
        return json_reply(200, {"data": data, "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}})

    def _edit_template(self, request: RawRequest, template_id: str) -> Reply:
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return self._error_reply(100, 400, "(#100) The request body is not valid JSON.")
        with self._state:
            template = self.templates[template_id]
            if isinstance(body, dict) and body.get("components"):
                template["components"] = body["components"]
            if isinstance(body, dict) and body.get("category"):
                template["category"] = str(body["category"]).upper()
            template["status"] = "PENDING"
            template.pop("rejected_reason", None)
        return json_reply(200, {"success": True})

    def _template_refusal(self, obj: dict[str, Any]) -> Reply | None:
        """Templates this fake holds must be approved to be sent (others are accepted as before)."""
        language = obj.get("language", {}).get("code") if isinstance(obj.get("language"), dict) else None
        try:
            template = self.template(str(obj.get("name")), str(language))
        except KeyError:
            return None
        if template["status"] == "APPROVED":
            return None
        if template["status"] == "PAUSED":
            return self._error_reply(132015, 400, "(#132015) Template is paused")
        return self._error_reply(132001, 404, "(#132001) Template name does not exist in the translation")

    def template(self, name: str, language: str = "en_US") -> dict[str, Any]:
        """The template ``name``/``language`` as this fake holds it (KeyError when unknown)."""
        with self._state:
            for template in self.templates.values():
                if template["name"] == name and template["language"] == language:
                    return template
        raise KeyError(f"no template {name!r} in {language}")

    def set_template_status(
        self, name: str, status: str, *, language: str = "en_US", reason: str | None = None
    ) -> WebhookDelivery:
        """Review a template: set its status (``APPROVED``, ``REJECTED``, ``PAUSED``...) and post
        the ``message_template_status_update`` webhook, signed, to ``webhook_url``."""
        template = self.template(name, language)
        with self._state:
            template["status"] = status.upper()
            if reason:
                template["rejected_reason"] = reason
        value = {
            "event": status.upper(),
            "message_template_id": int(template["id"]),
            "message_template_name": name,
            "message_template_language": language,
            "reason": reason or "NONE",
        }
        return self._post_change("message_template_status_update", value, template["id"], status.lower())

    def set_template_category(self, name: str, category: str, *, language: str = "en_US") -> WebhookDelivery:
        """Recategorise a template and post the ``template_category_update`` webhook."""
        template = self.template(name, language)
        with self._state:
            previous, template["category"] = template["category"], category.upper()
        value = {
            "message_template_id": int(template["id"]),
            "message_template_name": name,
            "message_template_language": language,
            "previous_category": previous,
            "new_category": category.upper(),
        }
        return self._post_change("template_category_update", value, template["id"], category.lower())

    def _post_change(self, field: str, value: dict[str, Any], subject: str, label: str) -> WebhookDelivery:
        payload = meta_change(field, value, waba_id=self.waba_id)
        http_status: int | None = None
        error: str | None = None
        if self.webhook_url is None:
            error = "no webhook URL configured"
        else:
            try:
                response = payload.post(self.webhook_url, secret=self.app_secret, client=self._http())
                http_status = response.status_code
                if not 200 <= http_status < 300:
                    error = response.text[:200]
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        delivery = WebhookDelivery(self.webhook_url, subject, label, http_status, error, payload)
        with self._state:
            self.webhooks.append(delivery)
        return delivery
