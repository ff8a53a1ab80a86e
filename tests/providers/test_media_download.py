"""Media: Meta id lookup + Bearer download with sha256 check, Twilio Basic auth + redirects, upload."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
import respx
from pvhelpers import ACCOUNT_SID, AUTH_TOKEN, GRAPH, PHONE_ID, TOKEN, meta, twilio

from eki_whatsapp.events import MediaRef
from eki_whatsapp.providers import MediaError

JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg bytes" * 100
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1479537139650973&ext=1&hash=abc"


def lookup(sha: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "url": LOOKASIDE,
            "mime_type": "image/jpeg",
            "sha256": sha,
            "file_size": len(JPEG),
            "id": "1479537139650973",
        },
    )


@respx.mock
def test_meta_download_by_id_uses_bearer_twice_and_checks_sha256() -> None:
    info = respx.get(f"{GRAPH}/1479537139650973").mock(return_value=lookup(hashlib.sha256(JPEG).hexdigest()))
    blob = respx.get(LOOKASIDE).mock(return_value=httpx.Response(200, content=JPEG))
    data = meta().download_media(MediaRef(provider="meta", id="1479537139650973", mime_type="image/jpeg"))
    assert data == JPEG
    assert info.calls[0].request.headers["authorization"] == f"Bearer {TOKEN}"
    assert blob.calls[0].request.headers["authorization"] == f"Bearer {TOKEN}"


@respx.mock
def test_meta_download_accepts_base64_sha256_from_webhooks() -> None:
    respx.get(LOOKASIDE).mock(return_value=httpx.Response(200, content=JPEG))
    sha = base64.b64encode(hashlib.sha256(JPEG).digest()).decode()
    assert meta().download_media(MediaRef(provider="meta", url=LOOKASIDE, sha256=sha)) == JPEG


@respx.mock
def test_meta_download_sha256_mismatch_is_a_media_error() -> None:
    respx.get(f"{GRAPH}/1479537139650973").mock(return_value=lookup("00" * 32))
    respx.get(LOOKASIDE).mock(return_value=httpx.Response(200, content=JPEG))
    with pytest.raises(MediaError, match="sha256"):
        meta().download_media(MediaRef(provider="meta", id="1479537139650973"))


@respx.mock
def test_meta_expired_media_id() -> None:
    body = {"error": {"message": "Unsupported get request.", "code": 100, "error_subcode": 33}}
    respx.get(f"{GRAPH}/old").mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(Exception) as info:
        meta().download_media(MediaRef(provider="meta", id="old"))
    assert info.value.code == 100  # type: ignore[attr-defined]


def test_meta_never_sends_the_token_to_a_foreign_host() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get("https://evil.example.com/x.jpg").mock(
            return_value=httpx.Response(200, content=b"x")
        )
        with pytest.raises(MediaError, match="refusing"):
            meta().download_media(MediaRef(provider="meta", url="https://evil.example.com/x.jpg"))
        assert not route.called


@respx.mock
def test_meta_download_http_error_is_media_error() -> None:
    respx.get(LOOKASIDE).mock(return_value=httpx.Response(404, text="gone"))
    with pytest.raises(MediaError):
        meta().download_media(MediaRef(provider="meta", url=LOOKASIDE))


@respx.mock
def test_meta_upload_is_multipart_and_returns_the_id() -> None:
    route = respx.post(f"{GRAPH}/{PHONE_ID}/media").mock(
        return_value=httpx.Response(200, json={"id": "987654"})
    )
    media_id = meta().upload_media(JPEG, "image/jpeg", filename="a.jpg")
    assert media_id == "987654"
    request = route.calls[0].request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    content = request.content
    assert b'name="messaging_product"\r\n\r\nwhatsapp' in content
    assert b'name="type"\r\n\r\nimage/jpeg' in content
    assert b'name="file"; filename="a.jpg"' in content and JPEG in content


TWILIO_MEDIA = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM123/Media/ME456"
STORAGE = "https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC/abc?Signature=xyz"


@respx.mock
def test_twilio_download_basic_auth_and_follows_redirect_without_credentials() -> None:
    first = respx.get(TWILIO_MEDIA).mock(return_value=httpx.Response(307, headers={"Location": STORAGE}))
    storage = respx.get(STORAGE).mock(return_value=httpx.Response(200, content=JPEG))
    data = twilio().download_media(MediaRef(provider="twilio", url=TWILIO_MEDIA, mime_type="image/jpeg"))
    assert data == JPEG
    expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert first.calls[0].request.headers["authorization"] == expected
    assert "authorization" not in storage.calls[0].request.headers  # credentials stay with Twilio


@respx.mock
def test_twilio_download_not_found() -> None:
    body = {"code": 20404, "message": "The requested resource was not found", "status": 404}
    respx.get(TWILIO_MEDIA).mock(return_value=httpx.Response(404, json=body))
    with pytest.raises(Exception) as info:
        twilio().download_media(MediaRef(provider="twilio", url=TWILIO_MEDIA))
    assert info.value.code == 20404  # type: ignore[attr-defined]


def test_twilio_download_needs_a_url() -> None:
    with pytest.raises(MediaError, match="MediaUrl"):
        twilio().download_media(MediaRef(provider="twilio", id="ME456"))


@pytest.mark.asyncio
async def test_async_downloads() -> None:
    with respx.mock:
        respx.get(f"{GRAPH}/1479537139650973").mock(return_value=lookup(hashlib.sha256(JPEG).hexdigest()))
        respx.get(LOOKASIDE).mock(return_value=httpx.Response(200, content=JPEG))
        respx.get(TWILIO_MEDIA).mock(return_value=httpx.Response(200, content=b"ogg"))
        m, t = meta(), twilio()
        assert await m.download_media_async(MediaRef(provider="meta", id="1479537139650973")) == JPEG
        assert await t.download_media_async(MediaRef(provider="twilio", url=TWILIO_MEDIA)) == b"ogg"
        await m.aclose()
        await t.aclose()
