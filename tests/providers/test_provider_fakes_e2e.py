"""Both providers against the library's fake Graph and Twilio servers (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eki_whatsapp import Settings
from eki_whatsapp.events import MediaRef
from eki_whatsapp.messages import Buttons, ListMenu, Location, Media, Reaction, Row, Template, Text
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
        meta.send("+16505551234", m).message_id for m in [*MESSAGES, Reaction("wamid.X", "\U0001f44d")]
    ]
    twilio_ids = [tw.send("+16505551234", m).message_id for m in MESSAGES]
    assert [s.id for s in graph.sent] == meta_ids
    assert [s.id for s in twilio.sent] == twilio_ids
    assert graph.sent[0].text == "hi" and twilio.sent[3].text == "Confirm?\n\n1. Yes\n2. No"


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
    await meta.aclose()
    await tw.aclose()
