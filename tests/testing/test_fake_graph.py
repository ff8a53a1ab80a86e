"""FakeGraphAPI over real HTTP: shapes, auth, validation, failure injection, media."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from eki_whatsapp.testing import FakeGraphAPI

TEXT = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "16505551234",
    "type": "text",
    "text": {"body": "Hola"},
}


@pytest.fixture
def quiet_graph():
    fake = FakeGraphAPI(auto_status=())
    yield fake
    fake.close()


def client(fake, token=None):
    headers = {"Authorization": f"Bearer {token or fake.token}"}
    return httpx.Client(base_url=fake.base_url, headers=headers, timeout=5)


def test_send_answers_the_real_shape_and_records(quiet_graph):
    with client(quiet_graph) as c:
        r = c.post(f"/v26.0/{quiet_graph.phone_number_id}/messages", json=TEXT)
    assert r.status_code == 200
    body = r.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "16505551234", "wa_id": "16505551234"}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    sent = quiet_graph.sent[0]
    assert (sent.id, sent.to, sent.type, sent.text) == (wamid, "16505551234", "text", "Hola")
    recorded = quiet_graph.requests[-1]
    assert recorded.json == TEXT and recorded.status == 200
    assert recorded.headers["Authorization"] == "Bearer ***"  # the token is never kept
    assert quiet_graph.token not in repr(quiet_graph.requests)


def test_template_send_reports_message_status(quiet_graph):
    body = {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "template",
        "template": {"name": "order_shipped", "language": {"code": "en_US"}},
    }
    with client(quiet_graph) as c:
        r = c.post(quiet_graph.messages_url, json=body)
    assert r.json()["messages"][0]["message_status"] == "accepted"
    assert quiet_graph.sent[0].is_template


def test_bsuid_recipient_echoes_user_id(quiet_graph):
    body = {"messaging_product": "whatsapp", "recipient": "US.1349", "type": "text", "text": {"body": "x"}}
    with client(quiet_graph) as c:
        r = c.post(quiet_graph.messages_url, json=body)
    assert r.json()["contacts"] == [{"input": "US.1349", "user_id": "US.1349"}]


@pytest.mark.parametrize(
    ("headers", "status", "code", "subcode"),
    [({}, 400, 104, None), ({"Authorization": "Bearer wrong"}, 401, 190, None)],
)
def test_auth_errors(quiet_graph, headers, status, code, subcode):
    r = httpx.post(quiet_graph.messages_url, json=TEXT, headers=headers)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code and error["type"] == "OAuthException" and error["fbtrace_id"]
    assert not quiet_graph.sent


def test_expired_token(quiet_graph):
    quiet_graph.token_expired = True
    with client(quiet_graph) as c:
        r = c.post(quiet_graph.messages_url, json=TEXT)
    error = r.json()["error"]
    assert r.status_code == 401 and error["code"] == 190 and error["error_subcode"] == 463
    assert "Session has expired" in error["message"]


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({**TEXT, "messaging_product": "sms"}, 100, "messaging_product"),
        ({k: v for k, v in TEXT.items() if k != "to"}, 131008, "'to'"),
        ({**TEXT, "text": {"body": "x" * 4097}}, 100, "4096"),
        ({**TEXT, "type": "image", "image": {"id": "1", "link": "https://x/y.jpg"}}, 100, "Exactly one"),
        (
            {
                **TEXT,
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": "?"},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": str(i), "title": "t"}} for i in range(4)
                        ]
                    },
                },
            },
            100,
            "between 1 and 3",
        ),
        ({**TEXT, "to": "15550783881"}, 131021, "Recipient cannot be sender"),
    ],
)
def test_invalid_requests_get_graph_errors(quiet_graph, body, code, words):
    with client(quiet_graph) as c:
        r = c.post(quiet_graph.messages_url, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == code and words in r.json()["error"]["message"]
    assert not quiet_graph.sent


def test_unknown_phone_number_id(quiet_graph):
    with client(quiet_graph) as c:
        r = c.post("/v26.0/999/messages", json=TEXT)
    error = r.json()["error"]
    assert r.status_code == 400 and error["code"] == 100 and error["error_subcode"] == 33


def test_mark_as_read_and_typing(quiet_graph):
    with client(quiet_graph) as c:
        r1 = c.post(
            quiet_graph.messages_url,
            json={"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"},
        )
        r2 = c.post(
            quiet_graph.messages_url,
            json={
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": "wamid.IN2",
                "typing_indicator": {"type": "text"},
            },
        )
    assert r1.json() == {"success": True} and r2.json() == {"success": True}
    assert quiet_graph.read_receipts == [("wamid.IN", False), ("wamid.IN2", True)]
    assert not quiet_graph.sent


def test_fail_next_by_code_times_and_recipient(quiet_graph):
    quiet_graph.fail_next(131056, times=2)
    quiet_graph.fail_next(131026, to="+16505550000", times=None)
    with client(quiet_graph) as c:
        codes = [c.post(quiet_graph.messages_url, json=TEXT) for _ in range(3)]
        other = [c.post(quiet_graph.messages_url, json={**TEXT, "to": "16505550000"}) for _ in range(2)]
    assert [r.status_code for r in codes] == [400, 400, 200]
    assert [r.json()["error"]["code"] for r in codes[:2]] == [131056, 131056]
    assert "pair rate limit" in codes[0].json()["error"]["message"]
    assert all(r.json()["error"]["code"] == 131026 for r in other)
    assert len(quiet_graph.sent) == 1


def test_fail_next_by_http_status_picks_a_real_code(quiet_graph):
    quiet_graph.fail_next(http_status=503)
    quiet_graph.fail_next(http_status=429)
    with client(quiet_graph) as c:
        first = c.post(quiet_graph.messages_url, json=TEXT)
        second = c.post(quiet_graph.messages_url, json=TEXT)
    assert (first.status_code, first.json()["error"]["code"]) == (503, 131016)
    assert first.json()["error"]["is_transient"] is True
    assert (second.status_code, second.json()["error"]["code"]) == (429, 130429)


def test_outage_modes(quiet_graph):
    with quiet_graph.outage("503"), client(quiet_graph) as c:
        r = c.post(quiet_graph.messages_url, json=TEXT)
        assert r.status_code == 503 and r.json()["error"]["code"] == 2
    with quiet_graph.outage("refuse"):
        assert quiet_graph.down
        with pytest.raises(httpx.ConnectError), client(quiet_graph) as c:
            c.post(quiet_graph.messages_url, json=TEXT)
    with quiet_graph.outage("drop"):
        with pytest.raises(httpx.RemoteProtocolError), client(quiet_graph) as c:
            c.post(quiet_graph.messages_url, json=TEXT)
    assert not quiet_graph.down
    with client(quiet_graph) as c:
        assert c.post(quiet_graph.messages_url, json=TEXT).status_code == 200


def test_outage_closes_kept_alive_connections(quiet_graph):
    with client(quiet_graph) as c:
        assert c.post(quiet_graph.messages_url, json=TEXT).status_code == 200
        quiet_graph.outage()
        with pytest.raises(httpx.TransportError):
            c.post(quiet_graph.messages_url, json=TEXT)
        quiet_graph.restore()
        assert c.post(quiet_graph.messages_url, json=TEXT).status_code == 200


def test_latency_makes_a_short_client_time_out(quiet_graph):
    quiet_graph.latency = 1.0
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.05) as c:
        c.post(quiet_graph.messages_url, json=TEXT, headers={"Authorization": f"Bearer {quiet_graph.token}"})


def test_media_upload_lookup_download_delete(quiet_graph):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    with client(quiet_graph) as c:
        up = c.post(
            f"/v26.0/{quiet_graph.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": "image/png"},
            files={"file": ("pic.png", data, "image/png")},
        )
        assert up.status_code == 200
        media_id = up.json()["id"]
        info = c.get(f"/v26.0/{media_id}").json()
        assert info["mime_type"] == "image/png" and info["file_size"] == len(data)
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        assert c.get(info["url"]).content == data
        assert httpx.get(info["url"]).status_code == 401  # download needs the Bearer token
        assert c.delete(f"/v26.0/{media_id}").json() == {"success": True}
        assert c.get(f"/v26.0/{media_id}").json()["error"]["code"] == 100
    assert quiet_graph.media == {}


def test_add_media_for_inbound_messages(quiet_graph):
    media_id = quiet_graph.add_media(b"voice", "audio/ogg")
    with client(quiet_graph) as c:
        info = c.get(f"/v26.0/{media_id}").json()
        assert c.get(info["url"]).content == b"voice"


def test_phone_number_lookup_and_subscriptions(quiet_graph):
    with client(quiet_graph) as c:
        phone = c.get(f"/v26.0/{quiet_graph.phone_number_id}").json()
        assert phone["code_verification_status"] == "VERIFIED"
        assert phone["id"] == quiet_graph.phone_number_id
        quiet_graph.phone_verified = False
        assert (
            c.get(f"/v26.0/{quiet_graph.phone_number_id}").json()["code_verification_status"]
            == "NOT_VERIFIED"
        )
        subs = c.get(f"/v26.0/{quiet_graph.app_id}/subscriptions").json()
        assert [f["name"] for f in subs["data"][0]["fields"]] == ["messages"]
        quiet_graph.subscribed_fields = []
        assert c.get(f"/v26.0/{quiet_graph.app_id}/subscriptions").json() == {"data": []}
        apps = c.get(f"/v26.0/{quiet_graph.waba_id}/subscribed_apps").json()["data"]
        assert apps[0]["whatsapp_business_api_data"]["id"] == quiet_graph.app_id
        assert c.delete(f"/v26.0/{quiet_graph.waba_id}/subscribed_apps").json() == {"success": True}
        assert c.get(f"/v26.0/{quiet_graph.waba_id}/subscribed_apps").json() == {"data": []}
        assert c.post(f"/v26.0/{quiet_graph.waba_id}/subscribed_apps").json() == {"success": True}
        assert quiet_graph.app_subscribed


def test_settings_fields_and_env(quiet_graph):
    fields = quiet_graph.settings_fields()
    assert fields["meta_graph_base_url"] == quiet_graph.base_url
    assert quiet_graph.env()["META_WHATSAPP_TOKEN"] == quiet_graph.token
    assert quiet_graph.token not in repr(quiet_graph)


def test_reset_forgets_everything(quiet_graph):
    quiet_graph.fail_next(131000, times=None)
    with client(quiet_graph) as c:
        assert c.post(quiet_graph.messages_url, json=TEXT).status_code == 500
        quiet_graph.reset()
        assert quiet_graph.requests == []
        assert c.post(quiet_graph.messages_url, json=TEXT).status_code == 200


def test_closed_fake_refuses_connections():
    fake = FakeGraphAPI()
    url = fake.messages_url
    fake.close()
    fake.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json=TEXT, headers={"Authorization": "Bearer fake-meta-token"})
