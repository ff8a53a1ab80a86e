"""Twilio's Content API (``content_base_url``): creating content (session content for buttons
and lists, templates) and reading approval requests. Shapes: docs/wire.md §9.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from .._common import json_body
from .._http import Attempts, Plan, exchange

if TYPE_CHECKING:
    from .send import Twilio

__all__ = ["content_request", "create_content_plan"]

_JSON = "application/json"


def content_request(
    twilio: Twilio, method: str, path: str, body: dict[str, Any] | None, pick: Callable[[dict[str, Any]], Any]
) -> Plan[Any]:
    """One JSON request to the Content API, retried like a send."""
    url = f"{twilio.content_base_url}{path}"
    content = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    headers = {**twilio._auth(), "Content-Type": _JSON} if body is not None else twilio._auth()

    def build() -> httpx.Request:
        return httpx.Request(method, url, content=content, headers=headers)

    def parse(response: httpx.Response) -> Any:
        data = json_body(response)
        if response.is_success and isinstance(data, dict):
            try:
                return pick(data)
            except (KeyError, TypeError, ValueError):
                pass
        raise twilio._error(response, data)

    return exchange(twilio.name, build, parse, twilio.retry, Attempts())


def create_content_plan(twilio: Twilio, key: str, content: dict[str, Any]) -> Plan[str]:
    """Create session content; its ``HX…`` SID."""
    body = {"friendly_name": f"eki_{key[:24]}", **content}
    return content_request(twilio, "POST", "/v1/Content", body, lambda data: str(data["sid"]))
