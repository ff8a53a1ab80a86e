"""The Flask console without a browser: it refuses to mount without an auth callback, refuses
requests the callback refuses, checks the CSRF token of every form, serves media through the app
(never a provider URL), and acts through the core (handoff, opt-out, router)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ekifl_kit import META_SECRET
from flask import Flask, redirect

from eki_whatsapp import Bot
from eki_whatsapp.testing import FakeGraphAPI, meta_image, meta_text
from eki_whatsapp_flask import console_blueprint

USER = "16505551234"


def staff(name: str | None = "lucia") -> Any:
    return lambda: name


@pytest.fixture
def console(app: Flask, bot: Bot) -> Flask:
    app.secret_key = "test-only"
    app.register_blueprint(console_blueprint(bot, auth=staff()), url_prefix="/console")
    return app


def say(app: Flask, text: str) -> None:
    payload = meta_text(text, sender=USER, profile_name="Lucía")
    request = payload.request("http://localhost/webhook/whatsapp/", secret=META_SECRET)
    assert (
        app.test_client()
        .post("/webhook/whatsapp/", data=payload.body, headers=dict(request.headers))
        .status_code
        == 200
    )


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_mounting_without_an_auth_callback_is_refused(bot: Bot) -> None:
    with pytest.raises(TypeError, match="auth"):
        console_blueprint(bot)
    with pytest.raises(TypeError, match="auth"):
        console_blueprint(bot, auth=None)


def test_a_refused_request_gets_401_with_a_basic_challenge(app: Flask, bot: Bot) -> None:
    app.secret_key = "x"
    app.register_blueprint(console_blueprint(bot, auth=staff(None)), url_prefix="/console")
    response = app.test_client().get("/console/")
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]


def test_the_callback_may_answer_with_its_own_response(app: Flask, bot: Bot) -> None:
    app.secret_key = "x"
    app.register_blueprint(console_blueprint(bot, auth=lambda: redirect("/login")), url_prefix="/console")
    response = app.test_client().get("/console/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_list_and_page_show_the_conversation(console: Flask, bot: Bot) -> None:
    say(console, "Hola")
    client = console.test_client()
    listing = client.get("/console/?q=%2B1 650 555 1234").get_data(as_text=True)
    assert "+16505551234" in listing and "Lucía" in listing
    page = client.get(f"/console/c/{USER}/15550783881/").get_data(as_text=True)
    assert "Hola" in page and "echo: Hola" in page and "+15550783881" in page
    assert "Tomar la conversación" in page and 'lang="es"' in page


def test_forms_without_the_csrf_token_are_refused(console: Flask, bot: Bot) -> None:
    say(console, "Hola")
    client = console.test_client()
    url = f"/console/c/{USER}/15550783881/"
    assert client.post(url + "take").status_code == 400
    client.get(url)  # a token is made for this session
    assert client.post(url + "take", data={"csrf_token": "forged"}).status_code == 400
    assert not bot.handoff.is_human(USER)
    other = console.test_client()
    stolen = token(other.get(url).get_data(as_text=True))
    assert client.post(url + "take", data={"csrf_token": stolen}).status_code == 400  # another session's


def test_take_over_reply_block_and_hand_back(console: Flask, bot: Bot, graph: FakeGraphAPI) -> None:
    say(console, "Hola")
    client = console.test_client()
    url = f"/console/c/{USER}/15550783881/"
    csrf = token(client.get(url).get_data(as_text=True))
    assert client.post(url + "take", data={"csrf_token": csrf}).status_code == 302
    assert bot.handoff.state(USER).staff == "lucia"
    say(console, "¿hola?")
    assert [m.text for m in graph.sent] == ["echo: Hola"]  # the bot is quiet
    client.post(url + "reply", data={"csrf_token": csrf, "text": "Soy Lucía"})
    assert graph.sent[-1].text == "Soy Lucía"
    assert bot.store.list_log(direction="out", limit=1)[0].extra["staff"] == "lucia"
    client.post(url + "block", data={"csrf_token": csrf})
    page = client.post(url + "reply", data={"csrf_token": csrf, "text": "¿sigues?"}, follow_redirects=True)
    # In Spanish by default: the staff of the first users speak it.
    assert "No se envió: el usuario pidió no recibir más mensajes" in page.get_data(as_text=True)
    assert graph.sent[-1].text == "Soy Lucía"
    client.post(url + "unblock", data={"csrf_token": csrf})
    client.post(url + "release", data={"csrf_token": csrf})
    assert bot.handoff.state(USER).mode == "bot"


def test_media_is_served_through_the_console(console: Flask, bot: Bot, graph: FakeGraphAPI) -> None:
    media_id = graph.add_media(b"\x89PNG fake", "image/png")
    payload = meta_image(media_id, mime_type="image/png", sender=USER)
    request = payload.request("http://localhost/webhook/whatsapp/", secret=META_SECRET)
    console.test_client().post("/webhook/whatsapp/", data=payload.body, headers=dict(request.headers))
    client = console.test_client()
    page = client.get(f"/console/c/{USER}/15550783881/").get_data(as_text=True)
    assert graph.base_url not in page and "lookaside" not in page
    src = re.search(r'<img src="([^"]+)"', page)
    assert src is not None
    response = client.get(src.group(1))
    assert response.data == b"\x89PNG fake" and response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_pages_speak_the_configured_language(app: Flask, bot: Bot) -> None:
    app.secret_key = "x"
    app.register_blueprint(console_blueprint(bot, auth=staff(), language="pt"), url_prefix="/console")
    english = console_blueprint(bot, auth=staff(), language="en", name="console_en")
    app.register_blueprint(english, url_prefix="/console-en")
    say(app, "Olá")
    page = app.test_client().get(f"/console/c/{USER}/15550783881/").get_data(as_text=True)
    assert "Assumir a conversa" in page and "Bloquear" in page
    assert "Take over" in app.test_client().get(f"/console-en/c/{USER}/15550783881/").get_data(as_text=True)
