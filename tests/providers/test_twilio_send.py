"""Twilio: the exact Messages API request for every message kind (docs/wire.md §9)."""

from __future__ import annotations

import base64
import json

import pytest
import respx
from pvhelpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    TWILIO_CONTENT,
    TWILIO_FROM,
    TWILIO_MESSAGES,
    content_refused,
    form,
    settings,
    twilio,
    twilio_ok,
)

from eki_whatsapp.messages import (
    Buttons,
    ListMenu,
    Location,
    Media,
    Reaction,
    Row,
    Section,
    Template,
    Text,
)
from eki_whatsapp.providers import TemplateError, Twilio, UnsupportedMessage

TO = "+5511987654321"
BASIC = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


def sent(route: respx.Route, index: int = -1) -> list[tuple[str, str]]:
    request = route.calls[index].request
    assert request.method == "POST"
    assert str(request.url) == TWILIO_MESSAGES
    assert request.headers["authorization"] == BASIC
    return form(request)


def base(*fields: tuple[str, str]) -> list[tuple[str, str]]:
    return [("To", "whatsapp:" + TO), ("From", TWILIO_FROM), *fields]


@respx.mock
def test_text_exact_body() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok("SM1"))
    receipt = twilio().send("5511987654321", "Olá, tudo bem?")
    assert route.calls[-1].request.content == (
        b"To=whatsapp%3A%2B5511987654321&From=whatsapp%3A%2B14155238886&Body=Ol%C3%A1%2C+tudo+bem%3F"
    )
    assert sent(route) == base(("Body", "Olá, tudo bem?"))
    assert (receipt.provider, receipt.message_id, receipt.status, receipt.attempts) == (
        "twilio",
        "SM1",
        "queued",
        1,
    )


@respx.mock
def test_bsuid_and_messaging_service_and_status_callback() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    provider = twilio(
        from_=None, messaging_service_sid="MG0123", status_callback="https://bot.example.com/status"
    )
    provider.send("US.13491208655302741918", Text("hi"))
    assert sent(route) == [
        ("To", "whatsapp:US.13491208655302741918"),
        ("MessagingServiceSid", "MG0123"),
        ("StatusCallback", "https://bot.example.com/status"),
        ("Body", "hi"),
    ]


@respx.mock
def test_media_by_url_with_caption() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    receipt = twilio().send(TO, Media.image("https://cdn.example.com/a.jpg", caption="Receipt"))
    assert sent(route) == base(("Body", "Receipt"), ("MediaUrl", "https://cdn.example.com/a.jpg"))
    assert receipt.kind == "image"
    twilio().send(TO, Media.document("https://cdn.example.com/a.pdf"))
    assert sent(route) == base(("MediaUrl", "https://cdn.example.com/a.pdf"))


def test_media_id_and_reaction_are_refused_not_dropped() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
        with pytest.raises(UnsupportedMessage, match="public URL") as info:
            twilio().send(TO, Media.image(media_id="1479537139650973"))
        assert info.value.attempts == 0 and info.value.provider == "twilio"
        with pytest.raises(UnsupportedMessage, match="reactions"):
            twilio().send(TO, Reaction("SM1", "\U0001f44d"))
        assert not route.called


@respx.mock
def test_template_with_content_sid_sends_content_variables_json() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    twilio().send(TO, Template("appointment", body=["Ana", "10:30"], content_sid="HX0123456789abcdef"))
    fields = sent(route)
    assert fields == base(
        ("ContentSid", "HX0123456789abcdef"), ("ContentVariables", '{"1":"Ana","2":"10:30"}')
    )
    assert json.loads(dict(fields)["ContentVariables"]) == {"1": "Ana", "2": "10:30"}


@respx.mock
def test_template_explicit_and_named_variables() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    provider = twilio()
    provider.send(TO, Template("t", body={"name": "José"}, content_sid="HX1"))
    assert dict(sent(route))["ContentVariables"] == '{"name":"José"}'
    provider.send(TO, Template("t", body=["x"], content_sid="HX1", content_variables={"7": "seven"}))
    assert dict(sent(route))["ContentVariables"] == '{"7":"seven"}'
    provider.send(TO, Template("t", content_sid="HX1"))
    assert sent(route) == base(("ContentSid", "HX1"))


def test_template_without_content_sid_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="content_sid"):
        twilio().send(TO, Template("order_shipped", body=["Ana"]))


@respx.mock
def test_buttons_become_numbered_text_when_the_content_api_refuses() -> None:
    respx.post(TWILIO_CONTENT).mock(return_value=content_refused())
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    buttons = Buttons(
        "Confirm the booking?", [("yes", "Yes"), ("no", "No")], header="Booking", footer="Thanks"
    )
    twilio().send(TO, buttons)
    assert sent(route) == base(("Body", "*Booking*\n\nConfirm the booking?\n\n1. Yes\n2. No\n\n_Thanks_"))
    assert buttons.match("2") == "no" and buttons.match(" yes ") == "yes" and buttons.match("3") is None


@respx.mock
def test_buttons_with_content_sid_use_the_content_template() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    twilio().send(
        TO, Buttons("Confirm?", ["Yes", "No"], content_sid="HXquick", content_variables={"1": "Ana"})
    )
    assert sent(route) == base(("ContentSid", "HXquick"), ("ContentVariables", '{"1":"Ana"}'))


@respx.mock
def test_buttons_with_media_header_send_the_media_with_the_numbered_text() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    twilio().send(TO, Buttons("Like it?", ["Yes", "No"], header=Media.image("https://cdn.example.com/a.jpg")))
    assert sent(route) == base(
        ("Body", "Like it?\n\n1. Yes\n2. No"), ("MediaUrl", "https://cdn.example.com/a.jpg")
    )


@respx.mock
def test_list_menu_becomes_numbered_text_across_sections_when_the_content_api_refuses() -> None:
    respx.post(TWILIO_CONTENT).mock(return_value=content_refused())
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    menu = ListMenu(
        "Pick a delivery option",
        "Options",
        [
            Section("Express", [Row("exp_1d", "Next day", "€9.90")]),
            Section("Standard", [Row("std_3d", "3 days"), Row("std_5d", "5 days", "free")]),
        ],
    )
    receipt = twilio().send(TO, menu)
    assert sent(route) == base(
        (
            "Body",
            "Pick a delivery option\n\n*Express*\n1. Next day — €9.90\n\n"
            "*Standard*\n2. 3 days\n3. 5 days — free",
        )
    )
    assert menu.match("3") == "std_5d" and menu.match("Next day") == "exp_1d"
    assert receipt.kind == "list" and receipt.rendering == "numbered-text"


@respx.mock
def test_location_uses_persistent_action() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    twilio().send(TO, Location(37.4848, -122.1484, name="Meta HQ", address="1 Hacker Way"))
    assert sent(route) == base(
        ("Body", "Meta HQ, 1 Hacker Way"), ("PersistentAction", "geo:37.4848,-122.1484|Meta HQ")
    )
    twilio().send(TO, Location(-23.5, -46.6))
    assert sent(route) == base(("Body", "-23.5,-46.6"), ("PersistentAction", "geo:-23.5,-46.6"))


@respx.mock
def test_long_text_split_at_1600() -> None:
    sids = iter(f"SM{i}" for i in range(10))
    route = respx.post(TWILIO_MESSAGES).mock(side_effect=lambda request: twilio_ok(next(sids)))
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    receipt = twilio().send(TO, text)
    bodies = [dict(form(call.request))["Body"] for call in route.calls]
    assert len(bodies) == len(receipt.message_ids) > 1
    assert all(len(b) <= 1600 for b in bodies)
    assert " ".join(bodies) == text
    assert all(b.endswith(".") for b in bodies)  # cut at sentence ends


@respx.mock
def test_reply_to_is_not_expressible_but_message_still_goes() -> None:
    route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    twilio().send(TO, Text("quoted?", reply_to="SM999"))
    assert sent(route) == base(("Body", "quoted?"))


@pytest.mark.asyncio
async def test_async_face() -> None:
    with respx.mock:
        route = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok("SMasync"))
        provider = twilio()
        receipt = await provider.send_async(TO, "hi")
        assert sent(route) == base(("Body", "hi"))
        assert receipt.message_id == "SMasync"
        await provider.aclose()


@respx.mock
def test_from_settings_base_url_and_business_number() -> None:
    route = respx.post(f"http://127.0.0.1:8999/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json").mock(
        return_value=twilio_ok()
    )
    provider = Twilio.from_settings(
        settings(
            twilio_api_base_url="http://127.0.0.1:8999",
            twilio_status_callback_url="https://bot.example.com/s",
        )
    )
    provider.send(TO, "hi")
    assert ("StatusCallback", "https://bot.example.com/s") in form(route.calls[-1].request)
    assert provider.business_number == "14155238886"
    assert provider.text_limit == 1600
    assert AUTH_TOKEN not in repr(provider)


def test_missing_sender_is_a_config_error() -> None:
    from eki_whatsapp.errors import ConfigError

    with pytest.raises(ConfigError, match="TWILIO_WHATSAPP_NUMBER"):
        Twilio(ACCOUNT_SID, AUTH_TOKEN)
