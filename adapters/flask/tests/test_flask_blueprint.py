"""The blueprint through Flask's test client: challenge, signatures, events, log rows, proxies."""

from __future__ import annotations

from typing import Any

from ekifl_kit import META_SECRET, VERIFY_TOKEN
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from eki_whatsapp import Bot
from eki_whatsapp.testing import (
    FakeGraphAPI,
    FakeTwilioAPI,
    Payload,
    meta_status,
    meta_text,
    twilio_status,
    twilio_text,
)
from eki_whatsapp_flask import current_bot, whatsapp_blueprint

URL = "http://localhost/webhook/whatsapp/"


def post(
    app: Flask, payload: Payload, *, path: str = "/webhook/whatsapp/", url: str = URL, **headers: str
) -> Any:
    secret = META_SECRET if payload.provider == "meta" else current_secret(app)
    all_headers = payload.headers(secret, url)
    all_headers.update(headers)
    return app.test_client().post(path, data=payload.body, headers=all_headers)


def current_secret(app: Flask) -> str:
    with app.app_context():
        token = current_bot().settings.twilio_auth_token
    assert token is not None
    return token.get_secret_value()


def test_meta_challenge_ok_and_wrong_token_403(app: Flask) -> None:
    client = app.test_client()
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    ok = client.get("/webhook/whatsapp/", query_string={**query, "hub.verify_token": VERIFY_TOKEN})
    assert (ok.status_code, ok.data) == (200, b"1158201444")
    refused = client.get("/webhook/whatsapp/", query_string={**query, "hub.verify_token": "guess"})
    assert refused.status_code == 403


def test_signed_meta_post_is_logged_and_answered_on_meta(
    app: Flask, bot: Bot, graph: FakeGraphAPI, twilio: FakeTwilioAPI
) -> None:
    payload = meta_text("Does it come in another color?", sender="16505551234")
    response = post(app, payload)
    assert response.status_code == 200
    row = bot.store.get_message("meta", payload.message_id or "")
    assert row is not None and row.text == "Does it come in another color?"
    assert [(m.to, m.text) for m in graph.sent] == [("16505551234", "echo: Does it come in another color?")]
    assert twilio.sent == []
    [out] = bot.store.list_log(direction="out")
    assert (out.provider, out.message_id, out.reason) == ("meta", graph.sent[0].id, "reply-channel")


def test_signed_twilio_post_is_logged_and_answered_on_twilio(
    app: Flask, bot: Bot, graph: FakeGraphAPI, twilio: FakeTwilioAPI
) -> None:
    payload = twilio_text("Olá, tudo bem?", sender="+5511987654321")
    response = post(app, payload)
    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    assert b"<Response/>" in response.data
    assert bot.store.get_message("twilio", payload.message_id or "") is not None
    assert [(m.to, m.text) for m in twilio.sent] == [("+5511987654321", "echo: Olá, tudo bem?")]
    assert graph.sent == []


def test_the_url_without_trailing_slash_is_served_too(app: Flask, graph: FakeGraphAPI) -> None:
    response = post(app, meta_text("no slash"), path="/webhook/whatsapp")
    assert response.status_code == 200
    assert len(graph.sent) == 1


def test_bad_signatures_are_403_and_nothing_is_logged(app: Flask, bot: Bot) -> None:
    meta = meta_text("forged")
    client = app.test_client()
    response = client.post("/webhook/whatsapp/", data=meta.body, headers=meta.headers("wrong-secret"))
    assert response.status_code == 403
    twilio = twilio_text("forged")
    response = client.post("/webhook/whatsapp/", data=twilio.body, headers=twilio.headers("wrong-token", URL))
    assert response.status_code == 403
    assert bot.store.list_log() == []


def test_bad_bodies_are_4xx(app: Flask, bot: Bot) -> None:
    client = app.test_client()
    broken = Payload("meta", b'{"object": "whatsapp_business_account", "entry": [', "application/json")
    assert (
        client.post("/webhook/whatsapp/", data=broken.body, headers=broken.headers(META_SECRET)).status_code
        == 400
    )
    assert client.post("/webhook/whatsapp/", data=b"<x/>", content_type="application/xml").status_code == 415
    assert client.put("/webhook/whatsapp/", data=b"{}").status_code == 405
    assert bot.store.list_log() == []


def test_statuses_update_the_log_row(app: Flask, bot: Bot, graph: FakeGraphAPI) -> None:
    post(app, meta_text("ship it"))
    sent_id = graph.sent[0].id
    for status in ("delivered", "read", "delivered"):
        assert post(app, meta_status(sent_id, status)).status_code == 200
    row = bot.store.get_message("meta", sent_id)
    assert row is not None and row.status == "read"


def test_twilio_failure_status_is_recorded(app: Flask, bot: Bot, twilio: FakeTwilioAPI) -> None:
    post(app, twilio_text("remind me"))
    sent_id = twilio.sent[0].id
    assert post(app, twilio_status(sent_id, "undelivered", error_code=63024)).status_code == 200
    row = bot.store.get_message("twilio", sent_id)
    assert row is not None and (row.status, row.error_code) == ("undelivered", 63024)


def proxied(app: Flask) -> Any:
    payload = twilio_text("through the proxy")
    headers = payload.headers(current_secret(app), "https://public.example.com/webhook/whatsapp/")
    headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.com"})
    return app.test_client().post("/webhook/whatsapp/", data=payload.body, headers=headers)


def test_behind_a_proxy_the_public_url_needs_proxyfix(app: Flask, twilio: FakeTwilioAPI) -> None:
    assert proxied(app).status_code == 403
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]
    assert proxied(app).status_code == 200
    assert [m.text for m in twilio.sent] == ["echo: through the proxy"]


def test_two_bots_under_two_names(bot: Bot) -> None:
    app = Flask(__name__)
    app.register_blueprint(whatsapp_blueprint(bot), url_prefix="/a")
    app.register_blueprint(whatsapp_blueprint(bot, name="second"), url_prefix="/b")
    with app.app_context():
        assert current_bot() is bot
    query = {"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": VERIFY_TOKEN}
    assert app.test_client().get("/b/", query_string=query).data == b"42"
