"""Both providers against the library's fake Graph and Twilio servers (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eki_whatsapp import Settings
from eki_whatsapp.events import MediaRef
from eki_whatsapp.messages import (
    Buttons,
    Catalog,
    Contact,
    Contacts,
    CtaUrl,
    Flow,
    ListMenu,
    Location,
    LocationRequest,
    Media,
    Product,
    ProductList,
    ProductSection,
    Reaction,
    Row,
    Template,
    Text,
)
from eki_whatsapp.providers import AuthError, MetaCloud, RetryPolicy, Twilio
from eki_whatsapp.testing.fake_graph import FakeGraphAPI
from eki_whatsapp.testing.fake_twilio import FakeTwilioAPI

MESSAGES = [
    Text("hi"),
    Media.image("https://cdn.example.com/a.jpg", caption="a caption"),
    Template("order_shipped", body=["Ana"], content_sid="HX0123"),
    Buttons("Confirm?", ["Yes", "No"]),
    ListMenu("Pick", "Open", [Row("1", "One")]),
    Location(-23.5, -46.6, name="Paulista"),
    CtaUrl("Track it", "Track", "https://example.com/t/1"),
    Media.audio("https://cdn.example.com/note.ogg", voice=True),
]
#: Kinds only Meta carries (without a Twilio Content Template made beforehand).
META_ONLY = [
    Contacts([Contact("Eki support", phones=["+34910000000"])]),
    LocationRequest("Where are you?"),
    Flow("Book", cta="Book", flow_id="1197715005513101", screen="BOOKING", token="t-1"),
    Product("194910842419823", "sku-1"),
    ProductList("194910842419823", "Picks", "For you", [ProductSection("Shoes", ["sku-1", "sku-2"])]),
    Catalog("All of it", thumbnail_product_id="sku-1"),
]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGraphAPI, FakeTwilioAPI, MetaCloud, Twilio]]:
    with FakeGraphAPI(auto_status=()) as graph, FakeTwilioAPI(auto_status=()) as twilio:
        settings = Settings(
            _env_file=None, whatsapp_provider="dual", **graph.settings_fields(), **twilio.settings_fields()
        )
        meta = MetaCloud.from_settings(settings, retry=RetryPolicy.none())
        tw = Twilio.from_settings(settings, retry=RetryPolicy.none())
        yield graph, twilio, meta, tw
        meta.close()
        tw.close()


def test_every_kind_is_accepted_by_both_fakes(
    fakes: tuple[FakeGraphAPI, FakeTwilioAPI, MetaCloud, Twilio],
) -> None:
    graph, twilio, meta, tw = fakes
    meta_ids = [
        meta.send("+16505551234", m).message_id
        for m in [*MESSAGES, *META_ONLY, Reaction("wamid.X", "\U0001f44d")]
    ]
    twilio_ids = [tw.send("+16505551234", m).message_id for m in MESSAGES]
    assert [s.id for s in graph.sent] == meta_ids
    assert [s.id for s in twilio.sent] == twilio_ids
    assert [
        graph.sent[i].body["interactive"]["type"] for i in range(len(MESSAGES) + 1, len(MESSAGES) + 6)
    ] == [
        "location_request_message",
        "flow",
        "product",
        "product_list",
        "catalog_message",
    ]
    # Buttons, the list and the URL button went to Twilio as real content made on demand.
    assert graph.sent[0].text == "hi" and twilio.sent[3].text == "Confirm?"
    assert [twilio.sent[i].type for i in (3, 4, 6)] == ["interactive"] * 3
    assert {next(iter(c["types"])) for c in twilio.contents.values()} == {
        "twilio/quick-reply",
        "twilio/list-picker",
        "twilio/call-to-action",
    }


def test_buttons_fall_back_to_numbered_text_when_the_fake_content_api_refuses(
    fakes: tuple[FakeGraphAPI, FakeTwilioAPI, MetaCloud, Twilio],
) -> None:
    _, twilio, _, tw = fakes
    twilio.refuse_content = True
    receipt = tw.send("+16505551234", Buttons("Confirm?", ["Yes", "No"]))
    assert receipt.rendering == "numbered-text" and twilio.sent[-1].text == "Confirm?\n\n1. Yes\n2. No"


def test_media_round_trips(fakes: tuple[FakeGraphAPI, FakeTwilioAPI, MetaCloud, Twilio]) -> None:
    _, twilio, meta, tw = fakes
    media_id = meta.upload_media(b"\xff\xd8 jpeg", "image/jpeg", filename="a.jpg")
    assert meta.download_media(MediaRef(provider="meta", id=media_id)) == b"\xff\xd8 jpeg"
    url = twilio.add_media(b"ogg data", "audio/ogg")
    assert tw.download_media(MediaRef(provider="twilio", url=url)) == b"ogg data"


def test_read_receipt_and_expired_token(fakes: tuple[FakeGraphAPI, FakeTwilioAPI, MetaCloud, Twilio]) -> None:
    graph, _, meta, _ = fakes
    assert meta.mark_as_read("wamid.IN1", typing=True) is True
    assert graph.read_receipts == [("wamid.IN1", True)]
    graph.token_expired = True
    with pytest.raises(AuthError) as info:
        meta.send("+16505551234", "hi")
    assert info.value.code == 190 and "System User" in str(info.value)


@pytest.mark.asyncio
async def test_async_face_against_the_fake(
    fakes: tuple[FakeGraphAPI, FakeTwilioAPI, MetaCloud, Twilio],
) -> None:
    graph, twilio, meta, tw = fakes
    receipt = await meta.send_async("+16505551234", "async hi")
    treceipt = await tw.send_async("+16505551234", "async hi")
    assert graph.sent[-1].id == receipt.message_id and twilio.sent[-1].id == treceipt.message_id
    buttons = await tw.send_async("+16505551234", Buttons("Async?", ["Yes"]))
    assert buttons.rendering == "content:created" and twilio.sent[-1].body["ContentSid"].startswith("HX")
    await meta.aclose()
    await tw.aclose()
