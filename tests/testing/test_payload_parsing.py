"""Every builder's output goes through ``Bot.handle`` (signature checked) into the right event."""

from __future__ import annotations

import pytest

from eki_whatsapp import InboundMessage, StatusUpdate
from eki_whatsapp.testing import (
    meta_audio,
    meta_batch,
    meta_button,
    meta_button_reply,
    meta_change,
    meta_contacts,
    meta_document,
    meta_image,
    meta_list_reply,
    meta_location,
    meta_message,
    meta_order,
    meta_reaction,
    meta_status,
    meta_sticker,
    meta_system,
    meta_text,
    meta_unsupported,
    meta_video,
    twilio_button,
    twilio_list_reply,
    twilio_location,
    twilio_media,
    twilio_status,
    twilio_text,
)

from .conftest import APP_SECRET, TWILIO_TOKEN

URL = "https://bot.example.com/webhook"


def handle(parse_bot, payload):
    bot, seen = parse_bot
    secret = APP_SECRET if payload.provider == "meta" else TWILIO_TOKEN
    response = bot.handle(payload.request(URL, secret=secret))
    assert response.status == 200, response.body
    return seen


def only_message(parse_bot, payload) -> InboundMessage:
    seen = handle(parse_bot, payload)
    assert len(seen.messages) == 1 and not seen.statuses
    message = seen.messages[0]
    assert message.id == payload.message_id
    return message


# --- Meta -------------------------------------------------------------------------------------
def test_meta_text(parse_bot):
    m = only_message(parse_bot, meta_text("¿Hay en azul? 🙂", sender="5215512345678", profile_name="Ana"))
    assert (m.provider, m.type, m.text) == ("meta", "text", "¿Hay en azul? 🙂")
    assert (m.sender, m.profile_name, m.recipient) == ("5215512345678", "Ana", "106540352242922")


def test_meta_text_with_context_forward_and_bsuid(parse_bot):
    payload = meta_text("hi", user_id="US.13491208655302741918", reply_to="wamid.PREV", forwarded=True)
    m = only_message(parse_bot, payload)
    assert m.reply_to == "wamid.PREV" and m.forwarded and not m.frequently_forwarded
    assert m.sender_user_id == "US.13491208655302741918" and m.sender == "16505551234"


def test_meta_username_only_user_is_keyed_by_bsuid(parse_bot):
    m = only_message(parse_bot, meta_text("hi", sender=None, user_id="US.777"))
    assert m.sender == "US.777" and m.sender_phone is None


@pytest.mark.parametrize(
    ("payload", "kind", "mime"),
    [
        (meta_image("111", caption="look"), "image", "image/jpeg"),
        (meta_video("222"), "video", "video/mp4"),
        (meta_audio("333"), "audio", "audio/ogg; codecs=opus"),
        (meta_document("444", filename="cv.pdf"), "document", "application/pdf"),
        (meta_sticker("555", animated=True), "sticker", "image/webp"),
    ],
)
def test_meta_media(parse_bot, payload, kind, mime):
    m = only_message(parse_bot, payload)
    assert m.type == kind and len(m.media) == 1
    ref = m.media[0]
    assert ref.id == payload.data["entry"][0]["changes"][0]["value"]["messages"][0][kind]["id"]
    assert ref.mime_type == mime and ref.sha256
    if kind == "image":
        assert m.text == "look" and ref.caption == "look"
    if kind == "audio":
        assert ref.voice
    if kind == "document":
        assert ref.filename == "cv.pdf"
    if kind == "sticker":
        assert ref.animated


def test_meta_location(parse_bot):
    m = only_message(parse_bot, meta_location(-23.55, -46.63, name="Paulista", address="Av. Paulista"))
    assert m.type == "location" and m.location is not None
    assert (m.location.latitude, m.location.longitude, m.location.name) == (-23.55, -46.63, "Paulista")


def test_meta_contacts(parse_bot):
    card = {"name": {"formatted_name": "Ana Lima"}, "phones": [{"phone": "+5511987654321", "type": "CELL"}]}
    m = only_message(parse_bot, meta_contacts([card]))
    assert m.type == "contacts" and m.contacts[0]["name"]["formatted_name"] == "Ana Lima"


def test_meta_button_reply(parse_bot):
    m = only_message(parse_bot, meta_button_reply("yes", "Sí", reply_to="wamid.BUTTONS"))
    assert (m.type, m.interactive_type, m.payload, m.text) == ("interactive", "button_reply", "yes", "Sí")
    assert m.reply_to == "wamid.BUTTONS"


def test_meta_list_reply(parse_bot):
    m = only_message(parse_bot, meta_list_reply("exp_1d", "Next day", description="€9.90"))
    assert (m.interactive_type, m.payload, m.text) == ("list_reply", "exp_1d", "Next day")


def test_meta_template_quick_reply(parse_bot):
    m = only_message(parse_bot, meta_button("STOP_PROMOS", "Stop promotions"))
    assert (m.type, m.payload, m.text) == ("button", "STOP_PROMOS", "Stop promotions")
    assert m.reply_to is not None


def test_meta_reaction_and_removed_reaction(parse_bot):
    m = only_message(parse_bot, meta_reaction("wamid.MINE", "👍"))
    assert m.type == "reaction" and m.reaction is not None
    assert (m.reaction.message_id, m.reaction.emoji) == ("wamid.MINE", "👍")
    bot, seen = parse_bot
    bot.handle(meta_reaction("wamid.MINE", None).request(URL, secret=APP_SECRET))
    assert seen.messages[-1].reaction.emoji is None


def test_meta_order_system_unsupported_and_generic(parse_bot):
    item = {"product_retailer_id": "sku-1", "quantity": 2, "item_price": 10.5, "currency": "USD"}
    order = only_message(parse_bot, meta_order("cat-1", [item], text="para hoy"))
    assert order.type == "order" and order.order["catalog_id"] == "cat-1" and order.text == "para hoy"
    bot, seen = parse_bot
    for payload in (
        meta_system("User changed number", new_wa_id="16505550000"),
        meta_unsupported("poll"),
        meta_message("request_welcome"),
    ):
        assert bot.handle(payload.request(URL, secret=APP_SECRET)).status == 200
    system, unsupported, welcome = seen.messages[1:]
    assert system.type == "system" and system.system["wa_id"] == "16505550000"
    assert "contacts" not in meta_system("x").data["entry"][0]["changes"][0]["value"]
    assert unsupported.type == "unsupported" and unsupported.unsupported_type == "poll"
    assert unsupported.errors[0].code == 131051
    assert welcome.type == "request_welcome"


def test_meta_statuses_sent_delivered_read_and_failed(parse_bot):
    _, seen = parse_bot
    for status in ("sent", "delivered", "read"):
        handle(parse_bot, meta_status("wamid.OUT", status, category="utility"))
    handle(parse_bot, meta_status("wamid.OUT2", "failed", error_code=131047))
    sent, delivered, read, failed = seen.statuses
    assert [s.status for s in seen.statuses] == ["sent", "delivered", "read", "failed"]
    assert all(isinstance(s, StatusUpdate) and s.provider == "meta" for s in seen.statuses)
    assert sent.pricing.category == "utility" and sent.pricing.billable is True
    assert delivered.pricing.type == "regular" and read.pricing is None
    assert failed.errors[0].code == 131047 and "24 hours" in failed.errors[0].details
    assert type(failed.error).__name__ == "WindowClosed"
    assert failed.recipient == "16505551234"


def test_meta_service_status_is_free(parse_bot):
    seen = handle(parse_bot, meta_status("wamid.S", "sent"))
    pricing = seen.statuses[0].pricing
    assert (pricing.category, pricing.type, pricing.billable) == ("service", "free_customer_service", False)


def test_meta_batch_every_event_is_handled(parse_bot):
    batch = meta_batch(
        meta_text("one"), meta_text("two", sender="16505550001"), meta_status("wamid.Z", "read")
    )
    seen = handle(parse_bot, batch)
    assert [m.text for m in seen.messages] == ["one", "two"]
    assert [s.message_id for s in seen.statuses] == ["wamid.Z"]


def test_meta_change_event(parse_bot):
    value = {
        "event": "APPROVED",
        "message_template_id": 1,
        "message_template_name": "order_shipped",
        "message_template_language": "en_US",
        "reason": "NONE",
    }
    seen = handle(parse_bot, meta_change("message_template_status_update", value))
    assert seen.changes[0].field == "message_template_status_update"
    assert seen.changes[0].raw["event"] == "APPROVED"


def test_meta_wrong_secret_is_refused(parse_bot):
    bot, seen = parse_bot
    response = bot.handle(meta_text("x").request(URL, secret="not-the-secret"))
    assert response.status == 403 and not seen.messages


# --- Twilio ------------------------------------------------------------------------------------
def test_twilio_text(parse_bot):
    m = only_message(parse_bot, twilio_text("Olá, tudo bem?", sender="+5511900000000", profile_name="Bia"))
    assert (m.provider, m.type, m.text, m.sender) == ("twilio", "text", "Olá, tudo bem?", "5511900000000")
    assert (m.profile_name, m.business_number) == ("Bia", "14155238886")


def test_twilio_text_forwarded_reply_and_bsuid(parse_bot):
    m = only_message(
        parse_bot, twilio_text("fw", reply_to="SMprev", frequently_forwarded=True, user_id="US.123")
    )
    assert m.reply_to == "SMprev" and m.forwarded and m.frequently_forwarded
    assert m.sender_user_id == "US.123"


@pytest.mark.parametrize(
    ("ctype", "kind"),
    [
        ("image/jpeg", "image"),
        ("video/mp4", "video"),
        ("audio/ogg", "audio"),
        ("application/pdf", "document"),
        ("image/webp", "sticker"),
    ],
)
def test_twilio_media(parse_bot, ctype, kind):
    payload = twilio_media(content_type=ctype, caption="mira")
    m = only_message(parse_bot, payload)
    assert m.type == kind and m.text == "mira"
    assert m.media[0].url == dict(payload.params)["MediaUrl0"] and m.media[0].mime_type == ctype


def test_twilio_location(parse_bot):
    m = only_message(parse_bot, twilio_location(37.4848, -122.1484, address="1 Hacker Way", label="Meta HQ"))
    assert m.type == "location"
    assert (m.location.latitude, m.location.name, m.location.address) == (37.4848, "Meta HQ", "1 Hacker Way")


def test_twilio_button_and_template_button(parse_bot):
    m = only_message(parse_bot, twilio_button("confirm_123", "Confirm", reply_to="SMbuttons"))
    assert (m.type, m.interactive_type, m.payload, m.text) == (
        "interactive",
        "button_reply",
        "confirm_123",
        "Confirm",
    )
    assert m.reply_to == "SMbuttons"
    _, seen = parse_bot
    handle(parse_bot, twilio_button("STOP", "Stop", message_type="button"))
    assert (seen.messages[-1].type, seen.messages[-1].payload) == ("button", "STOP")


def test_twilio_list_reply(parse_bot):
    m = only_message(parse_bot, twilio_list_reply("exp_1d", "Next day"))
    assert (m.interactive_type, m.payload, m.text) == ("list_reply", "exp_1d", "Next day")


@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "read"])
def test_twilio_status(parse_bot, status):
    seen = handle(parse_bot, twilio_status("SMout", status, to="+5511987654321"))
    s = seen.statuses[0]
    assert (s.provider, s.message_id, s.status, s.recipient) == ("twilio", "SMout", status, "5511987654321")
    assert s.business_number == "14155238886" and not s.errors


def test_twilio_failed_status_outside_window(parse_bot):
    seen = handle(parse_bot, twilio_status("SMout", "failed", error_code=63016))
    s = seen.statuses[0]
    assert s.failed and s.errors[0].code == 63016
    assert type(s.error).__name__ == "WindowClosed"


def test_twilio_signature_is_checked(parse_bot):
    bot, seen = parse_bot
    assert bot.handle(twilio_text("x").request(URL, secret="wrong")).status == 403
    assert bot.handle(twilio_text("x").request(URL)).status == 401
    assert not seen.messages
