"""Media on Meta's Cloud API: downloading an inbound item (lookup by id, then the file) and
uploading bytes to send by media id. Shapes: docs/wire.md §4.9."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ...events import MediaRef
from .._common import json_body
from .._http import Attempts, Plan, exchange
from ..base import MediaError

if TYPE_CHECKING:
    from .send import MetaCloud

__all__ = ["digest_matches", "download_plan", "trusted", "upload_plan"]

#: Where Meta serves media from: the only hosts the access token is sent to.
MEDIA_HOST_SUFFIXES = (".fbsbx.com", ".facebook.com", ".whatsapp.net", ".fbcdn.net")


def trusted(cloud: MetaCloud, url: str) -> bool:
    """Whether ``url`` is Meta's: only there does the access token go."""
    host = (urlsplit(url).hostname or "").lower()
    return host == cloud._base_host or host.endswith(MEDIA_HOST_SUFFIXES)


def download_plan(cloud: MetaCloud, ref: MediaRef) -> Plan[bytes]:
    """The bytes of an inbound media item: its URL looked up by id, then fetched, with the
    token sent only to Meta's hosts and the sha256 checked."""
    attempts = Attempts()
    url, sha256 = ref.url, ref.sha256
    if ref.id:
        lookup = f"{cloud._api}/{ref.id}"
        headers = cloud._auth()

        def parse_lookup(response: httpx.Response) -> dict[str, Any]:
            data = json_body(response)
            if response.is_success and isinstance(data, dict) and data.get("url"):
                return data
            raise cloud._error(response, data, media=True)

        info = yield from exchange(
            cloud.name,
            lambda: httpx.Request("GET", lookup, headers=headers),
            parse_lookup,
            cloud.retry,
            attempts,
        )
        url = str(info["url"])
        sha256 = info.get("sha256") or sha256
    if not url:
        raise MediaError("the media reference has neither an id nor a url", provider=cloud.name)
    if not trusted(cloud, url):
        raise MediaError(
            f"refusing to send the access token to {urlsplit(url).hostname!r}: Meta media is "
            "served from *.fbsbx.com / *.whatsapp.net; pass the media id instead",
            provider=cloud.name,
        )
    download_url = url
    headers = cloud._auth()

    def parse_download(response: httpx.Response) -> bytes:
        if response.is_success:
            return response.content
        raise cloud._error(response, json_body(response), media=True)

    content: bytes = yield from exchange(
        cloud.name,
        lambda: httpx.Request("GET", download_url, headers=headers),
        parse_download,
        cloud.retry,
        attempts,
        follow_redirects=True,
    )
    if sha256 and not digest_matches(content, str(sha256)):
        raise MediaError(
            "the downloaded media does not match its sha256; download it again", provider=cloud.name
        )
    return content


def upload_plan(cloud: MetaCloud, data: bytes, mime: str, filename: str) -> Plan[str]:
    """Upload bytes (``POST /{phone-number-id}/media``); the media id."""
    if not mime or "/" not in mime:
        raise ValueError(f"upload_media needs a MIME type such as 'image/jpeg', not {mime!r}")
    url = f"{cloud._api}/{cloud.phone_number_id}/media"
    headers = cloud._auth()

    def build() -> httpx.Request:
        return httpx.Request(
            "POST",
            url,
            headers=headers,
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (filename, data, mime)},
        )

    def parse(response: httpx.Response) -> str:
        body = json_body(response)
        if response.is_success and isinstance(body, dict) and body.get("id"):
            return str(body["id"])
        raise cloud._error(response, body, media=True)

    return exchange(cloud.name, build, parse, cloud.retry, Attempts())


def digest_matches(content: bytes, expected: str) -> bool:
    """Meta gives sha256 as hex (media lookup) or base64 (some webhooks); accept either."""
    digest = hashlib.sha256(content).digest()
    expected = expected.strip()
    if hmac.compare_digest(digest.hex(), expected.lower()):
        return True
    return hmac.compare_digest(base64.b64encode(digest).decode(), expected)
