"""Every Meta message kind and status (docs/wire.md §3) becomes the right typed event."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from eki_whatsapp import Bot, ChangeEvent, InboundMessage, StatusUpdate
from eki_whatsapp.providers import RateLimited, WindowClosed
from eki_whatsapp.providers.meta_webhook import PayloadError, parse_body

from .helpers import data, meta_envelope, meta_msg, meta_request, meta_value


def one(kind: str, obj: Any = None, **extra: Any) -> InboundMessage:
    [event] = parse_body(meta_envelope(meta_value([meta_msg(kind, obj, **extra)])))
    assert isinstance(event, InboundMessage)
    return event


def test_wire_3_5_text_example() -> None:
    [msg] = parse_body(json.loads(data("meta_text_3_5.json")))
    assert isinstance(msg, InboundMessage)
    assert msg.provider == "meta"
    assert msg.id == "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUFCQ0RFRjAxMjM0NTY3ODlBQgA="
    assert msg.sender == "16505551234"
    assert msg.sender_user_id == "US.13491208655302741918"
    assert msg.recipient == "106540352242922"
    assert msg.business_number == "15550783881"
    assert msg.type == "text"
    assert msg.text == "Does it come in another color?"
    assert msg.timestamp == datetime(2025, 6, 8, 20, 59, 43, tzinfo=timezone.utc)
    assert msg.profile_name == "Sheena Nelson"
    assert msg.reply_to is None
    assert msg.media == ()
    assert msg.raw["text"]["body"] == "Does it come in another color?"


def test_events_are_immutable() -> None:
    msg = one("text", {"body": "hi"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.text = "changed"  # type: ignore[misc]


def test_escaped_non_ascii_text_m2() -> None:
    [msg] = parse_body(json.loads(data("meta_m2.json")))
    assert isinstance(msg, InboundMessage)
    assert msg.text == "Olá 👋"
    assert msg.profile_name == "José"


@pytest.mark.parametrize("kind", ["image", "video", "document"])
def test_media_with_caption(kind: str) -> None:
    obj = {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "abc=", "caption": "look"}
    if kind == "document":
        obj["filename"] = "notes.pdf"
    msg = one(kind, obj)
    assert msg.type == kind
    assert msg.text == "look"
    [ref] = msg.media
    assert (ref.provider, ref.id, ref.mime_type, ref.sha256, ref.caption) == (
        "meta",
        "1479537139650973",
        "image/jpeg",
        "abc=",
        "look",
    )
    assert ref.filename == ("notes.pdf" if kind == "document" else None)


def test_voice_note_and_sticker() -> None:
    voice = one("audio", {"id": "9", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": True})
    assert voice.type == "audio" and voice.media[0].voice and voice.text is None
    sticker = one("sticker", {"id": "7", "mime_type": "image/webp", "sha256": "y", "animated": True})
    assert sticker.type == "sticker" and sticker.media[0].animated


def test_location_pin_and_place() -> None:
    pin = one("location", {"latitude": 37.4848, "longitude": -122.1484})
    assert pin.location is not None and (pin.location.latitude, pin.location.longitude) == (
        37.4848,
        -122.1484,
    )
    place = one("location", {"latitude": "1.5", "longitude": "2", "name": "HQ", "address": "1 Hacker Way"})
    assert place.location is not None and (place.location.name, place.location.address) == (
        "HQ",
        "1 Hacker Way",
    )


def test_contacts() -> None:
    contacts = [
        {"name": {"formatted_name": "Ana Lima"}, "phones": [{"phone": "+5511987654321", "type": "CELL"}]}
    ]
    msg = one("contacts", contacts)
    assert msg.type == "contacts"
    assert msg.contacts[0]["name"]["formatted_name"] == "Ana Lima"


def test_button_reply_list_reply_and_flow_reply() -> None:
    button = one(
        "interactive",
        {"type": "button_reply", "button_reply": {"id": "yes", "title": "Sí"}},
        context={"from": "15550783881", "id": "wamid.ASKED"},
    )
    assert (button.type, button.interactive_type, button.text, button.payload) == (
        "interactive",
        "button_reply",
        "Sí",
        "yes",
    )
    assert button.reply_to == "wamid.ASKED"
    row = one("interactive", {"type": "list_reply", "list_reply": {"id": "exp_1d", "title": "Next day"}})
    assert (row.text, row.payload) == ("Next day", "exp_1d")
    flow = one(
        "interactive",
        {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"a": 1}'}},
    )
    assert flow.interactive_type == "nfm_reply" and json.loads(flow.payload or "") == {"a": 1}


def test_template_quick_reply_button() -> None:
    msg = one("button", {"payload": "STOP_PROMOS", "text": "Stop promotions"}, context={"id": "wamid.TPL"})
    assert (msg.type, msg.text, msg.payload, msg.reply_to) == (
        "button",
        "Stop promotions",
        "STOP_PROMOS",
        "wamid.TPL",
    )


def test_reaction_added_and_removed() -> None:
    added = one("reaction", {"message_id": "wamid.X", "emoji": "\U0001f44d"})
    assert (
        added.reaction is not None and added.reaction.emoji == "👍" and added.reaction.message_id == "wamid.X"
    )
    removed = one("reaction", {"message_id": "wamid.X"})
    assert removed.reaction is not None and removed.reaction.emoji is None
    removed_empty = one("reaction", {"message_id": "wamid.X", "emoji": ""})
    assert removed_empty.reaction is not None and removed_empty.reaction.emoji is None


def test_order() -> None:
    items = [{"product_retailer_id": "sku1", "quantity": 2, "item_price": 10.5, "currency": "USD"}]
    msg = one("order", {"catalog_id": "c1", "text": "for friday", "product_items": items})
    assert msg.type == "order" and msg.text == "for friday"
    assert msg.order is not None and msg.order["product_items"][0]["product_retailer_id"] == "sku1"


def test_system_message_without_contacts() -> None:
    value = meta_value()
    value["messages"] = [
        {
            "from": "5511987654321",
            "id": "wamid.SYS",
            "timestamp": "1749416400",
            "type": "system",
            "system": {
                "body": "User changed number",
                "type": "user_changed_number",
                "wa_id": "5511900000000",
            },
        }
    ]
    [msg] = parse_body(meta_envelope(value))
    assert isinstance(msg, InboundMessage)
    assert msg.type == "system" and msg.profile_name is None
    assert msg.system is not None and msg.system["wa_id"] == "5511900000000"


def test_request_welcome_edit_revoke() -> None:
    assert one("request_welcome").type == "request_welcome"
    edit = one(
        "edit", {"original_message_id": "wamid.OLD", "message": {"type": "text", "text": {"body": "fixed"}}}
    )
    assert (edit.type, edit.text, edit.payload) == ("edit", "fixed", "wamid.OLD")
    assert one("revoke", {"original_message_id": "wamid.OLD"}).payload == "wamid.OLD"


def test_unsupported_and_unknown_kinds_keep_raw() -> None:
    poll = one(
        "unsupported",
        {"type": "poll"},
        errors=[{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}],
    )
    assert (poll.type, poll.unsupported_type) == ("unsupported", "poll")
    assert poll.errors[0].code == 131051
    old = one("unknown", None, errors=[{"code": 131051, "title": "Unsupported message type"}])
    assert old.type == "unsupported"
    future = one("hologram", {"depth": 3})
    assert (future.type, future.unsupported_type) == ("unsupported", "hologram")
    assert future.raw["hologram"] == {"depth": 3}


def test_malformed_known_kind_is_kept_as_unsupported() -> None:
    msg = one("location", {"latitude": "north"})
    assert (msg.type, msg.unsupported_type) == ("unsupported", "location")
    assert msg.raw["location"] == {"latitude": "north"}


def test_context_forwarded_flags_and_referral() -> None:
    fwd = one("text", {"body": "x"}, context={"forwarded": True})
    assert fwd.forwarded and not fwd.frequently_forwarded
    many = one("text", {"body": "x"}, context={"frequently_forwarded": True})
    assert many.forwarded and many.frequently_forwarded
    ad = one(
        "text",
        {"body": "hi"},
        referral={
            "source_url": "https://fb.me/x",
            "source_id": "ad1",
            "source_type": "ad",
            "ctwa_clid": "clid",
        },
    )
    assert ad.referral is not None and (ad.referral.source_id, ad.referral.ctwa_clid) == ("ad1", "clid")


def test_username_only_user_is_keyed_by_bsuid() -> None:
    value = meta_value()
    value["contacts"] = [{"profile": {"name": "anon", "username": "@anon"}, "user_id": "US.1349120865530274"}]
    value["messages"] = [
        {
            "from_user_id": "US.1349120865530274",
            "id": "wamid.U",
            "timestamp": "1",
            "type": "text",
            "text": {"body": "x"},
        }
    ]
    [msg] = parse_body(meta_envelope(value))
    assert isinstance(msg, InboundMessage)
    assert (msg.sender, msg.sender_phone, msg.sender_user_id, msg.profile_name) == (
        "US.1349120865530274",
        None,
        "US.1349120865530274",
        "anon",
    )


def test_batched_body_every_entry_change_message_and_status() -> None:
    messages_a = [meta_msg("text", {"body": f"a{i}"}, id=f"wamid.A{i}") for i in range(3)]
    statuses = [
        {"id": "wamid.OUT1", "status": "sent", "timestamp": "1749416390", "recipient_id": "5511987654321"},
        {"id": "wamid.OUT2", "status": "read", "timestamp": "1749416391", "recipient_id": "5511987654321"},
    ]
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {"field": "messages", "value": meta_value(messages_a)},
                    {"field": "messages", "value": meta_value(statuses=statuses)},
                ],
            },
            {
                "id": "2",
                "changes": [
                    {
                        "field": "messages",
                        "value": meta_value([meta_msg("text", {"body": "b"}, id="wamid.B")]),
                    },
                    {
                        "field": "message_template_status_update",
                        "value": {"event": "APPROVED", "message_template_name": "welcome", "reason": "NONE"},
                    },
                ],
            },
        ],
    }
    events = parse_body(body)
    assert [type(e).__name__ for e in events] == ["InboundMessage"] * 3 + ["StatusUpdate"] * 2 + [
        "InboundMessage",
        "ChangeEvent",
    ]
    assert [e.text for e in events if isinstance(e, InboundMessage)] == ["a0", "a1", "a2", "b"]
    change = events[-1]
    assert isinstance(change, ChangeEvent)
    assert change.field == "message_template_status_update" and change.raw["event"] == "APPROVED"
    assert change.account_id == "2"


def test_wire_3_6_delivered_status_with_pmp_pricing() -> None:
    [status] = parse_body(json.loads(data("meta_status_3_6.json")))
    assert isinstance(status, StatusUpdate)
    assert status.provider == "meta"
    assert status.message_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    assert status.status == "delivered"
    assert status.recipient == "16505551234"
    assert status.timestamp == datetime.fromtimestamp(1749416390, tz=timezone.utc)
    assert status.pricing is not None
    assert (
        status.pricing.category,
        status.pricing.pricing_model,
        status.pricing.billable,
        status.pricing.type,
    ) == (
        "utility",
        "PMP",
        True,
        "regular",
    )
    assert status.errors == () and status.error is None


def test_cbp_status_with_conversation() -> None:
    st = {
        "id": "wamid.C",
        "status": "SENT",
        "timestamp": "1700000000",
        "recipient_id": "1555",
        "conversation": {
            "id": "conv1",
            "expiration_timestamp": "1700086400",
            "origin": {"type": "marketing"},
        },
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "marketing"},
    }
    [status] = parse_body(meta_envelope(meta_value(statuses=[st])))
    assert isinstance(status, StatusUpdate)
    assert status.status == "sent"  # lower-cased
    assert status.pricing is not None
    assert (
        status.pricing.pricing_model,
        status.pricing.conversation_id,
        status.pricing.conversation_origin,
    ) == (
        "CBP",
        "conv1",
        "marketing",
    )


def test_failed_status_without_contacts_maps_to_typed_error() -> None:
    st = {
        "id": "wamid.F",
        "status": "failed",
        "timestamp": "1749416395",
        "recipient_id": "16505551234",
        "errors": [
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
            }
        ],
    }
    [status] = parse_body(meta_envelope(meta_value(statuses=[st])))
    assert isinstance(status, StatusUpdate)
    assert status.failed
    assert status.errors[0].code == 131047
    assert status.errors[0].details is not None and "24 hours" in status.errors[0].details
    assert isinstance(status.error, WindowClosed)
    assert status.error.code == 131047 and not status.error.retryable
    rate = dataclasses.replace(status.errors[0], code=130429)
    assert isinstance(rate.as_exception("meta"), RateLimited)


def test_other_fields_pass_through_as_change_events() -> None:
    for field in ("account_update", "user_preferences", "phone_number_quality_update", "brand_new_field"):
        [event] = parse_body(meta_envelope({"event": "X", "timestamp": 1749416400}, field=field))
        assert isinstance(event, ChangeEvent) and event.field == field and event.raw["event"] == "X"


def test_value_level_errors_are_kept() -> None:
    value = meta_value(errors=[{"code": 131000, "title": "Something went wrong"}])
    [event] = parse_body(meta_envelope(value))
    assert isinstance(event, ChangeEvent) and event.field == "errors"


@pytest.mark.parametrize(
    "body",
    [
        {"object": "page", "entry": []},
        {"entry": []},
        {"object": "whatsapp_business_account", "entry": {"id": 1}},
    ],
)
def test_not_a_whatsapp_body_is_a_payload_error(body: dict[str, Any]) -> None:
    with pytest.raises(PayloadError):
        parse_body(body)


def test_odd_entries_are_kept_not_dropped() -> None:
    body = {"object": "whatsapp_business_account", "entry": ["junk", {"id": "1", "changes": "nope"}]}
    events = parse_body(body)
    assert [e.field for e in events if isinstance(e, ChangeEvent)] == ["invalid_entry", "invalid_entry"]


def test_message_without_id_gets_a_stable_synthetic_id() -> None:
    m = {"from": "1555", "timestamp": "1", "type": "text", "text": {"body": "x"}}
    [a] = parse_body(meta_envelope(meta_value([m])))
    [b] = parse_body(meta_envelope(meta_value([dict(m)])))
    assert isinstance(a, InboundMessage) and isinstance(b, InboundMessage)
    assert a.id == b.id and a.id.startswith("meta-noid-")


def test_bad_timestamp_falls_back_to_receipt_time() -> None:
    msg = one("text", {"body": "x"}, timestamp="soon")
    assert msg.timestamp.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - msg.timestamp).total_seconds()) < 60


def test_every_kind_through_bot_handle_is_logged(bot: Bot) -> None:
    kinds = {
        "text": {"body": "hola"},
        "image": {"id": "1", "mime_type": "image/png", "sha256": "s"},
        "audio": {"id": "2", "mime_type": "audio/ogg", "sha256": "s", "voice": True},
        "location": {"latitude": 1, "longitude": 2},
        "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Uno"}},
        "reaction": {"message_id": "wamid.Z", "emoji": "❤"},
        "unsupported": {"type": "poll"},
    }
    messages = [meta_msg(k, v, id=f"wamid.{k}") for k, v in kinds.items()]
    got: list[InboundMessage] = []
    bot.on_message(got.append)
    assert bot.handle(meta_request(meta_envelope(meta_value(messages)))).status == 200
    assert [m.type for m in got] == list(kinds)
    logged = {row.message_id: row for row in bot.store.list_log()}
    assert set(logged) == {f"wamid.{k}" for k in kinds}
    assert logged["wamid.interactive"].text == "Uno"
    assert logged["wamid.text"].raw["text"] == {"body": "hola"}
