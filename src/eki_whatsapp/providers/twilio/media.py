"""Media on Twilio: an inbound item's ``MediaUrl`` fetched with the account's credentials, which
go only to Twilio's own hosts (its redirect to storage drops them). Shapes: docs/wire.md §7."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from ...events import MediaRef
from .._common import json_body
from .._http import Attempts, Plan, exchange
from ..base import MediaError

if TYPE_CHECKING:
    from .send import Twilio

__all__ = ["download_plan", "trusted"]


def trusted(twilio: Twilio, url: str) -> bool:
    """Whether ``url`` is Twilio's: only there do the credentials go."""
    host = (urlsplit(url).hostname or "").lower()
    return host == twilio._base_host or host == "twilio.com" or host.endswith(".twilio.com")


def download_plan(twilio: Twilio, ref: MediaRef) -> Plan[bytes]:
    """The bytes of an inbound media item."""
    if not ref.url:
        raise MediaError("a Twilio media reference needs its MediaUrl", provider=twilio.name)
    url = ref.url
    headers = twilio._auth() if trusted(twilio, url) else {}

    def parse(response: httpx.Response) -> bytes:
        if response.is_success:
            return response.content
        raise twilio._error(response, json_body(response), media=True)

    return exchange(
        twilio.name,
        lambda: httpx.Request("GET", url, headers=headers),
        parse,
        twilio.retry,
        Attempts(),
        follow_redirects=True,
    )
