"""MetaCloud: the exact Graph API request for every message kind (docs/wire.md §4)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx
from pvhelpers import META_MESSAGES, PHONE_ID, TOKEN, USER, body_json, meta, meta_ok

from eki_whatsapp.messages import (
    Buttons,
    Currency,
    DateTime,
    ListMenu,
    Location,
    Media,
    Reaction,
    Row,
    Section,
    Template,
    TemplateButton,
    Text,
)
from eki_whatsapp.providers import InvalidRecipient, MetaCloud


def sent(route: respx.Route, index: int = -1) -> tuple[httpx.Request, Any]:
    request = route.calls[index].request
    assert request.method == "POST"
    assert str(request.url) == META_MESSAGES
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    return request, body_json(request)


def envelope(kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": USER,
        "type": kind,
        kind: obj,
    }
    body.update(extra)
    return body


def test_the_provider_clients_keep_no_cookies() -> None:
    # The provider APIs authenticate each request by its credentials: the clients a provider
    # makes keep no cookie jar (a proxy's Set-Cookie is ignored, and no response is parsed for
    # one), sync and async alike. A client passed in (client=...) is used as given.
    from eki_whatsapp.providers._http import Clients

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True}, headers={"Set-Cookie": "AWSALB=sticky; Path=/"})

    clients = Clients(transport=httpx.MockTransport(answer), async_transport=httpx.MockTransport(answer))
    sync = clients.sync()
    sync.send(httpx.Request("POST", META_MESSAGES))
    assert dict(sync.cookies) == {}

    async def send_async() -> dict[str, str]:
        client = clients.async_()
        await client.send(httpx.Request("POST", META_MESSAGES))
        return dict(client.cookies)

    assert asyncio.run(send_async()) == {}
    given = httpx.Client(transport=httpx.MockTransport(answer))
    assert Clients(client=given).sync() is given


@respx.mock
def test_text_exact_bytes() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok("wamid.T1"))
    receipt = meta().send("+1 650-555-1234", Text("See https://example.com", preview_url=True))
    request, _ = sent(route)
    assert request.content == (
        b'{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234",'
        b'"type":"text","text":{"body":"See https://example.com","preview_url":true}}'
    )
    assert (receipt.provider, receipt.message_id, receipt.status, receipt.attempts) == (
        "meta",
        "wamid.T1",
        "accepted",
        1,
    )
    assert receipt.kind == "text" and receipt.raw["messages"][0]["id"] == "wamid.T1"


@respx.mock
def test_plain_string_is_text_and_whatsapp_prefix_is_normalised() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send("whatsapp:+16505551234", "hello")
    assert sent(route)[1] == envelope("text", {"body": "hello", "preview_url": False})


@respx.mock
def test_bsuid_goes_in_recipient_field() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send("US.13491208655302741918", "hi")
    body = sent(route)[1]
    assert "to" not in body
    assert body["recipient"] == "US.13491208655302741918"


def test_invalid_recipient_is_refused_before_sending() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(META_MESSAGES).mock(return_value=meta_ok())
        with pytest.raises(InvalidRecipient, match="'to'") as info:
            meta().send("not a number", "hi")
        assert not route.called
        assert info.value.attempts == 0


@respx.mock
def test_reply_to_adds_context() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Text("yes", reply_to="wamid.IN1"))
    assert sent(route)[1]["context"] == {"message_id": "wamid.IN1"}


@pytest.mark.parametrize(
    ("message", "kind", "obj"),
    [
        (
            Media.image("https://cdn.example.com/a.jpg", caption="Receipt"),
            "image",
            {"link": "https://cdn.example.com/a.jpg", "caption": "Receipt"},
        ),
        (Media.image(media_id="1479537139650973"), "image", {"id": "1479537139650973"}),
        (
            Media.video("https://cdn.example.com/a.mp4", caption="clip"),
            "video",
            {"link": "https://cdn.example.com/a.mp4", "caption": "clip"},
        ),
        (Media.audio("4490709327"), "audio", {"id": "4490709327"}),
        (
            Media.document("https://cdn.example.com/a.pdf", caption="…", filename="invoice.pdf"),
            "document",
            {"link": "https://cdn.example.com/a.pdf", "caption": "…", "filename": "invoice.pdf"},
        ),
        (
            Media.sticker("https://cdn.example.com/s.webp"),
            "sticker",
            {"link": "https://cdn.example.com/s.webp"},
        ),
    ],
)
@respx.mock
def test_media(message: Media, kind: str, obj: dict[str, Any]) -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    receipt = meta().send(USER, message)
    assert sent(route)[1] == envelope(kind, obj)
    assert receipt.kind == kind


@respx.mock
def test_template_with_video_header_currency_date_and_buttons() -> None:
    # The docs/wire.md §4.4 example, built from the model.
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok(status="held_for_quality_assessment"))
    template = Template(
        "order_shipped",
        "en_US",
        header=Media.video("https://cdn.example.com/clip.mp4"),
        body=["Sheena", Currency("$10.99", "USD", 10990), DateTime("June 9, 2026")],
        buttons=[
            TemplateButton(0, "quick_reply", payload="STOP_PROMOS"),
            TemplateButton(1, "url", text="order/8127"),
        ],
        callback_data="campaign-7",
    )
    receipt = meta().send(USER, template)
    assert sent(route)[1] == envelope(
        "template",
        {
            "name": "order_shipped",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "header",
                    "parameters": [{"type": "video", "video": {"link": "https://cdn.example.com/clip.mp4"}}],
                },
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Sheena"},
                        {
                            "type": "currency",
                            "currency": {"fallback_value": "$10.99", "code": "USD", "amount_1000": 10990},
                        },
                        {"type": "date_time", "date_time": {"fallback_value": "June 9, 2026"}},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "1",
                    "parameters": [{"type": "text", "text": "order/8127"}],
                },
            ],
        },
        biz_opaque_callback_data="campaign-7",
    )
    assert receipt.status == "held_for_quality_assessment"


@respx.mock
def test_template_named_parameters_and_text_header() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Template("welcome", "pt_BR", header="Olá", body={"first_name": "Ana"}))
    components = sent(route)[1]["template"]["components"]
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "Olá"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana", "parameter_name": "first_name"}]},
    ]


@respx.mock
def test_template_without_parameters_has_no_components() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Template("hello_world"))
    assert sent(route)[1]["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


@respx.mock
def test_reply_buttons() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Buttons("Confirm?", [("yes", "Yes"), ("no", "No")], header="Booking", footer="Thanks"))
    assert sent(route)[1] == envelope(
        "interactive",
        {
            "type": "button",
            "header": {"type": "text", "text": "Booking"},
            "body": {"text": "Confirm?"},
            "footer": {"text": "Thanks"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}},
                ]
            },
        },
    )


@respx.mock
def test_reply_buttons_with_image_header() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Buttons("Like it?", ["Yes"], header=Media.image("https://cdn.example.com/a.jpg")))
    assert sent(route)[1]["interactive"]["header"] == {
        "type": "image",
        "image": {"link": "https://cdn.example.com/a.jpg"},
    }


@respx.mock
def test_list_menu() -> None:
    # The docs/wire.md §4.6 example.
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    menu = ListMenu(
        "Pick a delivery option",
        "Options",
        [Section("Express", [Row("exp_1d", "Next day", "€9.90")])],
        header="Shipping",
        footer="Prices incl. tax",
    )
    receipt = meta().send(USER, menu)
    assert sent(route)[1] == envelope(
        "interactive",
        {
            "type": "list",
            "header": {"type": "text", "text": "Shipping"},
            "body": {"text": "Pick a delivery option"},
            "footer": {"text": "Prices incl. tax"},
            "action": {
                "button": "Options",
                "sections": [
                    {
                        "title": "Express",
                        "rows": [{"id": "exp_1d", "title": "Next day", "description": "€9.90"}],
                    }
                ],
            },
        },
    )
    assert receipt.kind == "list"


@respx.mock
def test_location_and_reaction() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    provider = meta()
    provider.send(USER, Location(37.4848, -122.1484, name="Meta HQ", address="1 Hacker Way, Menlo Park, CA"))
    assert sent(route)[1] == envelope(
        "location",
        {
            "latitude": 37.4848,
            "longitude": -122.1484,
            "name": "Meta HQ",
            "address": "1 Hacker Way, Menlo Park, CA",
        },
    )
    provider.send(USER, Reaction("wamid.IN1", "\U0001f44d"))
    _, body = sent(route)
    assert body == envelope("reaction", {"message_id": "wamid.IN1", "emoji": "\U0001f44d"})
    provider.send(USER, Reaction("wamid.IN1"))
    assert sent(route)[1]["reaction"]["emoji"] == ""


@respx.mock
def test_long_text_is_sent_in_parts_in_order() -> None:
    ids = iter(["wamid.P1", "wamid.P2", "wamid.P3"])
    route = respx.post(META_MESSAGES).mock(side_effect=lambda request: meta_ok(next(ids)))
    paragraphs = [f"Paragraph {i}. " + "word " * 700 for i in range(3)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    receipt = meta().send(USER, text)
    bodies = [body_json(call.request)["text"]["body"] for call in route.calls]
    assert len(bodies) == 3
    assert all(len(b) <= 4096 for b in bodies)
    assert [b.split(".")[0] for b in bodies] == ["Paragraph 0", "Paragraph 1", "Paragraph 2"]
    assert receipt.message_ids == ("wamid.P1", "wamid.P2", "wamid.P3")
    assert receipt.message_id == "wamid.P1" and receipt.attempts == 3


@respx.mock
def test_only_the_first_part_of_a_split_reply_quotes() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Text("word " * 1000, reply_to="wamid.IN1"))
    contexts = [body_json(call.request).get("context") for call in route.calls]
    assert contexts == [{"message_id": "wamid.IN1"}, None]


@respx.mock
def test_mark_as_read_and_typing_indicator() -> None:
    route = respx.post(META_MESSAGES).mock(return_value=httpx.Response(200, json={"success": True}))
    provider = meta()
    assert provider.mark_as_read("wamid.IN1") is True
    assert sent(route)[1] == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"}
    assert provider.mark_as_read("wamid.IN2", typing=True) is True
    assert sent(route)[1] == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN2",
        "typing_indicator": {"type": "text"},
    }


@pytest.mark.asyncio
async def test_async_face_sends_the_same_request() -> None:
    with respx.mock:
        route = respx.post(META_MESSAGES).mock(return_value=meta_ok("wamid.A1"))
        provider = meta()
        receipt = await provider.send_async(USER, Buttons("Confirm?", ["Yes", "No"]))
        sync_body = provider.payloads(USER, Buttons("Confirm?", ["Yes", "No"]))[0]
        assert sent(route)[1] == sync_body
        assert receipt.message_id == "wamid.A1"
        route.mock(return_value=httpx.Response(200, json={"success": True}))
        assert await provider.mark_as_read_async("wamid.IN1", typing=True) is True
        assert sent(route)[1]["typing_indicator"] == {"type": "text"}
        await provider.aclose()


@respx.mock
def test_graph_version_and_base_url_from_settings() -> None:
    from pvhelpers import settings

    route = respx.post(f"http://127.0.0.1:9999/v25.0/{PHONE_ID}/messages").mock(return_value=meta_ok())
    provider = MetaCloud.from_settings(
        settings(meta_graph_version="v25.0", meta_graph_base_url="http://127.0.0.1:9999/")
    )
    provider.send(USER, "hi")
    assert route.called
    assert provider.business_number == PHONE_ID
    assert provider.text_limit == 4096
    assert TOKEN not in repr(provider)
