"""Every kind WhatsApp carries: the exact request each provider sends, or its clear refusal.

Request shapes are Meta's and Twilio's documented ones; each test names its page.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from pvhelpers import (
    META_MESSAGES,
    TWILIO_CONTENT,
    TWILIO_FROM,
    TWILIO_MESSAGES,
    USER,
    body_json,
    content_refused,
    form,
    meta,
    meta_ok,
    twilio,
    twilio_ok,
)

from eki_whatsapp import MemoryStore
from eki_whatsapp.messages import (
    Buttons,
    Catalog,
    Contact,
    ContactAddress,
    ContactPhone,
    Contacts,
    CtaUrl,
    Flow,
    ListMenu,
    Location,
    LocationRequest,
    Media,
    MessageError,
    Product,
    ProductList,
    ProductSection,
    Reaction,
    Row,
    Template,
    TemplateButton,
    Text,
)
from eki_whatsapp.providers import UnsupportedMessage
from eki_whatsapp.providers.base import can_send
from eki_whatsapp.providers.twilio.content import geo_uri

TO = "+5511987654321"


def meta_sent(route: respx.Route) -> dict[str, Any]:
    body: dict[str, Any] = body_json(route.calls[-1].request)
    return body


def interactive(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": USER,
        "type": "interactive",
        "interactive": obj,
    }


# --- Meta ---------------------------------------------------------------------------------------
@respx.mock
def test_meta_contacts_card() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/messages/contacts-messages
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    card = Contact(
        "Ana Souza",
        first_name="Ana",
        last_name="Souza",
        phones=[ContactPhone("+5511987654321", "WORK", wa_id="5511987654321"), "+5511900000000"],
        emails=["ana@example.com"],
        urls=["https://example.com"],
        addresses=[ContactAddress(street="Rua A 1", city="São Paulo", country_code="BR", type="WORK")],
        company="Eki",
        title="Support",
        birthday="1990-05-17",
    )
    meta().send(USER, Contacts([card], reply_to="wamid.IN"))
    assert meta_sent(route) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": USER,
        "type": "contacts",
        "contacts": [
            {
                "name": {"formatted_name": "Ana Souza", "first_name": "Ana", "last_name": "Souza"},
                "phones": [
                    {"phone": "+5511987654321", "type": "WORK", "wa_id": "5511987654321"},
                    {"phone": "+5511900000000"},
                ],
                "emails": [{"email": "ana@example.com"}],
                "urls": [{"url": "https://example.com"}],
                "addresses": [
                    {"street": "Rua A 1", "city": "São Paulo", "country_code": "BR", "type": "WORK"}
                ],
                "org": {"company": "Eki", "title": "Support"},
                "birthday": "1990-05-17",
            }
        ],
        "context": {"message_id": "wamid.IN"},
    }


def test_a_contact_with_only_a_formatted_name_gets_the_first_name_meta_requires() -> None:
    # Meta: formatted_name plus at least one other name part (contacts-messages page above).
    body = meta().payloads(USER, Contacts([Contact("Eki support", phones=["+34910000000"])]))[0]
    assert body["contacts"][0]["name"] == {"formatted_name": "Eki support", "first_name": "Eki support"}


@respx.mock
def test_meta_cta_url_with_image_header() -> None:
    # https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-cta-url-messages/
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(
        USER,
        CtaUrl(
            "Track your parcel",
            "Track",
            "https://example.com/t/8127",
            header=Media.image("https://cdn.example.com/box.png"),
            footer="Eki",
        ),
    )
    assert meta_sent(route) == interactive(
        {
            "type": "cta_url",
            "header": {"type": "image", "image": {"link": "https://cdn.example.com/box.png"}},
            "body": {"text": "Track your parcel"},
            "footer": {"text": "Eki"},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "Track", "url": "https://example.com/t/8127"},
            },
        }
    )


@respx.mock
def test_meta_location_request() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/messages/location-request-messages
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, LocationRequest("Where should we pick you up?"))
    assert meta_sent(route) == interactive(
        {
            "type": "location_request_message",
            "body": {"text": "Where should we pick you up?"},
            "action": {"name": "send_location"},
        }
    )


@respx.mock
def test_meta_voice_note() -> None:
    # https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/audio-messages/
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Media("audio", url="https://cdn.example.com/note.ogg", voice=True))
    assert meta_sent(route)["audio"] == {"link": "https://cdn.example.com/note.ogg", "voice": True}
    meta().send(USER, Media.audio(media_id="1013859600285441"))
    assert meta_sent(route)["audio"] == {"id": "1013859600285441"}  # plain audio: no voice flag


@respx.mock
def test_meta_flow_navigate_with_data() -> None:
    # https://developers.facebook.com/docs/whatsapp/flows/guides/sendingaflow
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(
        USER,
        Flow(
            "Book a table",
            cta="Book",
            flow_id="1197715005513101",
            token="booking-8127",
            screen="BOOKING",
            data={"party": 2},
            header="Eki bistro",
            footer="Takes a minute",
        ),
    )
    assert meta_sent(route) == interactive(
        {
            "type": "flow",
            "header": {"type": "text", "text": "Eki bistro"},
            "body": {"text": "Book a table"},
            "footer": {"text": "Takes a minute"},
            "action": {
                "name": "flow",
                "parameters": {
                    "flow_message_version": "3",
                    "flow_token": "booking-8127",
                    "flow_id": "1197715005513101",
                    "flow_cta": "Book",
                    "flow_action": "navigate",
                    "flow_action_payload": {"screen": "BOOKING", "data": {"party": 2}},
                },
            },
        }
    )


def test_meta_flow_by_name_in_draft_with_data_exchange() -> None:
    # Same page: flow_name instead of flow_id, mode "draft", data_exchange has no payload.
    flow = Flow("Sign up", cta="Start", flow_name="signup", action="data_exchange", mode="draft")
    action = meta().payloads(USER, flow)[0]["interactive"]["action"]
    assert action == {
        "name": "flow",
        "parameters": {
            "flow_message_version": "3",
            "flow_name": "signup",
            "flow_cta": "Start",
            "flow_action": "data_exchange",
            "mode": "draft",
        },
    }


@respx.mock
def test_meta_single_product_multi_product_and_catalog() -> None:
    # https://developers.facebook.com/docs/whatsapp/guides/commerce-guides/share-products-with-customers
    route = respx.post(META_MESSAGES).mock(return_value=meta_ok())
    meta().send(USER, Product("194910842419823", "sku-8127", body="Back in stock", footer="Eki"))
    assert meta_sent(route) == interactive(
        {
            "type": "product",
            "body": {"text": "Back in stock"},
            "footer": {"text": "Eki"},
            "action": {"catalog_id": "194910842419823", "product_retailer_id": "sku-8127"},
        }
    )
    meta().send(
        USER,
        ProductList(
            "194910842419823",
            "Our picks",
            "Chosen for you",
            [ProductSection("Shoes", ["sku-1", "sku-2"]), ProductSection("Hats", ["sku-3"])],
        ),
    )
    assert meta_sent(route) == interactive(
        {
            "type": "product_list",
            "header": {"type": "text", "text": "Our picks"},
            "body": {"text": "Chosen for you"},
            "action": {
                "catalog_id": "194910842419823",
                "sections": [
                    {
                        "title": "Shoes",
                        "product_items": [{"product_retailer_id": "sku-1"}, {"product_retailer_id": "sku-2"}],
                    },
                    {"title": "Hats", "product_items": [{"product_retailer_id": "sku-3"}]},
                ],
            },
        }
    )
    meta().send(USER, Catalog("Everything we sell", thumbnail_product_id="sku-8127"))
    assert meta_sent(route) == interactive(
        {
            "type": "catalog_message",
            "body": {"text": "Everything we sell"},
            "action": {
                "name": "catalog_message",
                "parameters": {"thumbnail_product_retailer_id": "sku-8127"},
            },
        }
    )


def test_template_flow_button_without_token_sends_one_action_parameter() -> None:
    # https://developers.facebook.com/docs/whatsapp/flows/guides/sendingaflow (template with a
    # FLOW button): the button component always carries one "action" parameter.
    body = meta().payloads(USER, Template("book", buttons=[TemplateButton(0, "flow")]))[0]
    assert body["template"]["components"] == [
        {"type": "button", "sub_type": "flow", "index": "0", "parameters": [{"type": "action", "action": {}}]}
    ]
    body = meta().payloads(USER, Template("book", buttons=[TemplateButton(0, "flow", payload="tok")]))[0]
    assert body["template"]["components"][0]["parameters"] == [
        {"type": "action", "action": {"flow_token": "tok"}}
    ]


# --- limits named at construction ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: CtaUrl("Hi", "A label longer than twenty", "https://x.example"), "CtaUrl.display_text"),
        (lambda: CtaUrl("Hi", "Go", "ftp://x.example"), "CtaUrl.url"),
        (lambda: Flow("Hi", cta="Go", screen="S"), "Flow.flow_id"),
        (lambda: Flow("Hi", cta="Go", flow_id="1"), "Flow.screen"),
        (lambda: Flow("Hi", cta="Go", flow_id="1", screen="S", data={}), "Flow.data"),
        (lambda: Contacts([]), "Contacts.contacts"),
        (lambda: Contact("Ana", birthday="17/05/1990"), "Contact.birthday"),
        (
            lambda: ProductList("c", "h", "b", [ProductSection("s", [f"p{i}" for i in range(31)])]),
            "ProductList.sections",
        ),
        (lambda: ProductList("c", "h", "b", []), "ProductList.sections"),
        (lambda: Media("image", url="https://x.example/a.jpg", voice=True), "Media.voice"),
        (lambda: LocationRequest(""), "LocationRequest.body"),
    ],
)
def test_limits_are_checked_at_construction_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(MessageError) as info:
        build()
    assert info.value.field == field


# --- Twilio: real buttons through the Content API ------------------------------------------------
def created(sid: str) -> httpx.Response:
    return httpx.Response(201, json={"sid": sid, "friendly_name": "x", "language": "en", "types": {}})


@respx.mock
def test_twilio_buttons_are_quick_reply_content_created_once_and_cached_in_the_store() -> None:
    # https://www.twilio.com/docs/content/twilio-quick-reply (in session: up to 3 buttons, no
    # approval) and https://www.twilio.com/docs/content/create-and-send-your-first-content-api-template
    content = respx.post(TWILIO_CONTENT).mock(return_value=created("HXquick1"))
    messages = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    store = MemoryStore()
    buttons = Buttons(
        "Confirm the booking?", [("yes", "Yes"), ("no", "No")], header="Booking", footer="Thanks"
    )
    receipt = twilio(store=store).send(TO, buttons)
    sent_content = json.loads(content.calls[0].request.content)
    # The text is a variable, so buttons with personalised bodies share one content.
    assert sent_content["types"]["twilio/quick-reply"] == {
        "body": "{{1}}",
        "actions": [{"title": "Yes", "id": "yes"}, {"title": "No", "id": "no"}],
    }
    assert sent_content["types"]["twilio/text"] == {"body": "{{1}}\n\n1. Yes\n2. No"}
    assert sent_content["language"] == "en" and sent_content["friendly_name"].startswith("eki_")
    assert sent_content["variables"] == {"1": "text"}
    assert form(messages.calls[-1].request) == [
        ("To", "whatsapp:" + TO),
        ("From", TWILIO_FROM),
        ("ContentSid", "HXquick1"),
        (
            "ContentVariables",
            json.dumps({"1": "*Booking*\n\nConfirm the booking?\n\n_Thanks_"}, separators=(",", ":")),
        ),
    ]
    assert receipt.rendering == "content:created"
    # Another process (a new provider on the same store) reuses the SID: no second create, even
    # for another text with the same buttons.
    again = twilio(store=store).send(TO, Buttons("Ana, confirm?", [("yes", "Yes"), ("no", "No")]))
    assert content.call_count == 1 and again.rendering == "content:cached"
    assert form(messages.calls[-1].request)[-2:] == [
        ("ContentSid", "HXquick1"),
        ("ContentVariables", '{"1":"Ana, confirm?"}'),
    ]


@respx.mock
def test_twilio_list_menu_is_list_picker_content() -> None:
    # https://www.twilio.com/docs/content/twilio-list-picker
    content = respx.post(TWILIO_CONTENT).mock(return_value=created("HXlist"))
    respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    menu = ListMenu(
        "Pick a delivery option", "Options", [Row("exp_1d", "Next day", "€9.90"), Row("std", "3 days")]
    )
    twilio().send(TO, menu)
    assert json.loads(content.calls[0].request.content)["types"]["twilio/list-picker"] == {
        "body": "{{1}}",
        "button": "Options",
        "items": [
            {"item": "Next day", "id": "exp_1d", "description": "€9.90"},
            {"item": "3 days", "id": "std"},
        ],
    }


@respx.mock
def test_twilio_cta_url_is_call_to_action_content_or_the_link_as_text() -> None:
    # https://www.twilio.com/docs/content/twilio-call-to-action
    content = respx.post(TWILIO_CONTENT).mock(return_value=created("HXcta"))
    messages = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    message = CtaUrl("Track your parcel", "Track", "https://example.com/t/8127")
    twilio().send(TO, message)
    assert json.loads(content.calls[0].request.content)["types"]["twilio/call-to-action"] == {
        "body": "{{1}}",
        "actions": [{"type": "URL", "title": "Track", "url": "https://example.com/t/8127"}],
    }
    content.mock(return_value=content_refused())
    receipt = twilio().send(TO, CtaUrl("Pay now", "Pay", "https://example.com/pay"))
    assert form(messages.calls[-1].request)[-1] == ("Body", "Pay now\n\nPay: https://example.com/pay")
    assert receipt.rendering == "numbered-text"


@respx.mock
def test_twilio_voice_note_is_a_media_url() -> None:
    # https://www.twilio.com/docs/whatsapp/guidance-whatsapp-media-messages
    messages = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    twilio().send(TO, Media.audio("https://cdn.example.com/note.ogg", voice=True))
    assert form(messages.calls[-1].request)[-1] == ("MediaUrl", "https://cdn.example.com/note.ogg")


@respx.mock
def test_twilio_geo_uri_never_uses_scientific_notation() -> None:
    # RFC 5870 geo URI: digits, sign and point only; repr(0.0000123) is "1.23e-05".
    messages = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    twilio().send(TO, Location(-0.0000123, 0.00005, name="Null Island"))
    assert ("PersistentAction", "geo:-0.0000123,0.00005|Null Island") in form(messages.calls[-1].request)
    assert geo_uri(37.4848, -122.1484) == "geo:37.4848,-122.1484"
    assert geo_uri(0.0, -0.0) == "geo:0,0"


@pytest.mark.parametrize(
    "message",
    [
        Contacts([Contact("Eki", phones=["+34910000000"])]),
        LocationRequest("Where are you?"),
        Flow("Book", cta="Book", flow_id="1", screen="S"),
        Product("c", "sku"),
        ProductList("c", "h", "b", [ProductSection("s", ["p"])]),
        Catalog("All of it"),
        Reaction("SM1", "\N{THUMBS UP SIGN}"),
        Template("order_shipped", body=["Ana"]),
    ],
)
def test_twilio_says_what_it_cannot_carry_before_any_request(message: Any) -> None:
    provider = twilio()
    assert provider.supports(message) is False and not can_send(provider, message)
    assert meta().supports(message) is True
    with respx.mock:  # nothing is mocked: a request would fail the test
        with pytest.raises(UnsupportedMessage if not isinstance(message, Template) else Exception):
            provider.send(TO, message)


@respx.mock
def test_twilio_sends_flows_and_catalogs_made_as_content_templates() -> None:
    # https://www.twilio.com/docs/content/flows and https://www.twilio.com/docs/content/twilio-catalog
    messages = respx.post(TWILIO_MESSAGES).mock(return_value=twilio_ok())
    flow = Flow(
        "Book", cta="Book", flow_id="1", screen="S", content_sid="HXflow", content_variables={"1": "Ana"}
    )
    assert twilio().supports(flow)
    twilio().send(TO, flow)
    assert form(messages.calls[-1].request)[-2:] == [
        ("ContentSid", "HXflow"),
        ("ContentVariables", '{"1":"Ana"}'),
    ]
    twilio().send(TO, Catalog("All of it", content_sid="HXcat"))
    assert form(messages.calls[-1].request)[-1] == ("ContentSid", "HXcat")


def test_plain_kinds_are_carried_by_both() -> None:
    for message in (Text("hi"), Media.image("https://cdn.example.com/a.jpg"), Location(1.0, 2.0)):
        assert twilio().supports(message) and meta().supports(message)
    assert not twilio().supports(Media.image(media_id="123"))


def test_the_content_api_is_on_content_twilio_com_for_every_twilio_host() -> None:
    # https://www.twilio.com/docs/content/content-api-resources (https://content.twilio.com/v1/...)
    assert twilio().content_base_url == "https://content.twilio.com"
    assert (
        twilio(base_url="https://api.dublin.ie1.twilio.com").content_base_url == "https://content.twilio.com"
    )
    assert twilio(base_url="http://127.0.0.1:8080/").content_base_url == "http://127.0.0.1:8080"
    assert (
        twilio(content_base_url="https://proxy.example.com").content_base_url == "https://proxy.example.com"
    )
