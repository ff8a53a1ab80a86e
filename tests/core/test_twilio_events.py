"""Every Twilio inbound parameter and status callback (docs/wire.md §7) becomes the right event."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from eki_whatsapp import Bot, InboundMessage, StatusUpdate
from eki_whatsapp.providers import InvalidRecipient, WindowClosed
from eki_whatsapp.providers.twilio_webhook import PayloadError, parse_params, split_address

from .helpers import T1_PARAMS, data, twilio_request

SID = "SM8824aaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def msg(**params: str) -> InboundMessage:
    base = {
        "MessageSid": SID,
        "AccountSid": "AC1",
        "From": "whatsapp:+5511987654321",
        "To": "whatsapp:+14155238886",
        "WaId": "5511987654321",
        "SmsStatus": "received",
        "NumMedia": "0",
        "Body": "",
    }
    base.update(params)
    [event] = parse_params(base)
    assert isinstance(event, InboundMessage)
    return event


def test_t1_text_message() -> None:
    params = dict(parse_qsl(data("twilio_t1.form").decode()))
    [m] = parse_params(params)
    assert isinstance(m, InboundMessage)
    assert (m.provider, m.id, m.sender, m.recipient, m.type, m.text, m.profile_name) == (
        "twilio",
        "SM0123456789abcdef0123456789abcdef",
        "5511987654321",
        "14155238886",
        "text",
        "Olá, tudo bem?",
        "José",
    )
    assert m.timestamp.tzinfo is not None
    assert m.raw["ApiVersion"] == "2010-04-01"
    assert m.media == () and not m.forwarded and m.reply_to is None


def test_interactive_button_example_7_2() -> None:
    m = msg(
        MessageType="interactive",
        Body="Confirm",
        ButtonText="Confirm",
        ButtonPayload="confirm_123",
        OriginalRepliedMessageSid="MM5cc4aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        OriginalRepliedMessageSender="whatsapp:+14155238886",
        Forwarded="false",
        FrequentlyForwarded="false",
        ReferralNumMedia="0",
    )
    assert (m.type, m.text, m.payload, m.reply_to, m.interactive_type) == (
        "interactive",
        "Confirm",
        "confirm_123",
        "MM5cc4aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "button_reply",
    )
    assert m.referral is None  # ReferralNumMedia=0 alone is not a referral


def test_template_quick_reply_button() -> None:
    m = msg(MessageType="button", Body="Stop", ButtonText="Stop", ButtonPayload="STOP_PROMOS")
    assert (m.type, m.text, m.payload) == ("button", "Stop", "STOP_PROMOS")


def test_list_picker_selection_with_list_params() -> None:
    m = msg(MessageType="interactive", Body="Next day", ListId="exp_1d", ListTitle="Next day")
    assert (m.text, m.payload, m.interactive_type) == ("Next day", "exp_1d", "list_reply")


@pytest.mark.parametrize("count", [0, 1, 3])
def test_media_zero_to_n(count: int) -> None:
    params = {
        "NumMedia": str(count),
        "Body": "caption" if count else "plain",
        "MessageType": "image" if count else "text",
    }
    for n in range(count):
        params[f"MediaUrl{n}"] = f"https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME{n}"
        params[f"MediaContentType{n}"] = "image/jpeg"
    m = msg(**params)
    assert len(m.media) == count
    assert [r.id for r in m.media] == [f"ME{n}" for n in range(count)]
    assert all(
        r.mime_type == "image/jpeg" and r.caption == "caption" and r.provider == "twilio" for r in m.media
    )


def test_media_kind_inferred_without_message_type() -> None:
    def media(mime: str) -> InboundMessage:
        return msg(NumMedia="1", MediaUrl0="https://api.twilio.com/x/Media/ME1", MediaContentType0=mime)

    assert media("video/mp4").type == "video"
    assert media("audio/ogg").type == "audio"
    assert media("application/pdf").type == "document"
    assert media("image/webp").type == "sticker"
    assert msg(Body="").media == () and msg(Body="").text is None


def test_location() -> None:
    m = msg(
        MessageType="location", Latitude="37.4848", Longitude="-122.1484", Address="1 Hacker Way", Label="HQ"
    )
    assert m.type == "location"
    assert m.location is not None
    assert (m.location.latitude, m.location.longitude, m.location.name, m.location.address) == (
        37.4848,
        -122.1484,
        "HQ",
        "1 Hacker Way",
    )
    assert msg(Latitude="1", Longitude="2").type == "location"


def test_forwarded_flags_and_profile_from_channel_metadata() -> None:
    m = msg(Body="fwd", Forwarded="true")
    assert m.forwarded and not m.frequently_forwarded
    m = msg(Body="fwd", FrequentlyForwarded="true")
    assert m.forwarded and m.frequently_forwarded
    meta = json.dumps(
        {"type": "whatsapp", "data": {"context": {"ProfileName": "Ana", "WaId": "5511987654321"}}}
    )
    assert msg(Body="x", ChannelMetadata=meta).profile_name == "Ana"
    assert msg(Body="x", ChannelMetadata="{not json").profile_name is None


def test_referral_parameters() -> None:
    m = msg(
        Body="hi",
        ReferralSourceId="ad1",
        ReferralSourceType="ad",
        ReferralCtwaClid="clid",
        ReferralHeadline="H",
    )
    assert m.referral is not None
    assert (m.referral.source_id, m.referral.source_type, m.referral.ctwa_clid) == ("ad1", "ad", "clid")


def test_bsuid_sender_without_phone() -> None:
    m = msg(From="whatsapp:US.13491208655302741918", WaId="", Body="hi")
    assert (m.sender, m.sender_phone, m.sender_user_id) == (
        "US.13491208655302741918",
        None,
        "US.13491208655302741918",
    )
    m = msg(ExternalUserId="whatsapp:ID.4566", Body="hi")
    assert (m.sender, m.sender_user_id) == ("5511987654321", "ID.4566")


def test_unknown_message_type_is_unsupported() -> None:
    m = msg(MessageType="poll", Body="")
    assert (m.type, m.unsupported_type) == ("unsupported", "poll")


def test_split_address() -> None:
    assert split_address("whatsapp:+14155238886") == ("14155238886", None)
    assert split_address("+14155238886") == ("14155238886", None)
    assert split_address("whatsapp:US.123") == (None, "US.123")
    assert split_address("") == (None, None)


@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "read", "Delivered"])
def test_status_callbacks(status: str) -> None:
    [st] = parse_params(
        {
            "MessageSid": SID,
            "SmsSid": SID,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": "AC1",
            "From": "whatsapp:+14155238886",
            "To": "whatsapp:+5511987654321",
            "ApiVersion": "2010-04-01",
            "ChannelPrefix": "whatsapp",
            "ChannelInstallSid": "XE1",
            "ChannelToAddress": "+55119876XXXXX",
            "EventType": status.upper(),
        }
    )
    assert isinstance(st, StatusUpdate)
    assert (st.provider, st.message_id, st.status, st.recipient, st.business_number) == (
        "twilio",
        SID,
        status.lower(),
        "5511987654321",
        "14155238886",
    )
    assert st.errors == () and st.pricing is None


def test_failed_and_undelivered_statuses_carry_typed_errors() -> None:
    [failed] = parse_params(
        {
            "MessageSid": SID,
            "MessageStatus": "failed",
            "ErrorCode": "63016",
            "ChannelStatusMessage": "Failed to send freeform message because you are outside the allowed window.",
            "To": "whatsapp:+5511987654321",
        }
    )
    assert isinstance(failed, StatusUpdate) and failed.failed
    assert failed.errors[0].code == 63016
    assert isinstance(failed.error, WindowClosed)
    [undelivered] = parse_params({"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "63024"})
    assert isinstance(undelivered, StatusUpdate) and undelivered.status == "undelivered"
    assert isinstance(undelivered.error, InvalidRecipient)


def test_not_twilio_params() -> None:
    with pytest.raises(PayloadError):
        parse_params({"Body": "hi"})


def test_twilio_through_bot_handle_dedups_by_message_sid(bot: Bot) -> None:
    got: list[InboundMessage] = []
    bot.on_message(got.append)
    for _ in range(3):
        assert bot.handle(twilio_request(T1_PARAMS)).status == 200
    assert len(got) == 1
    assert len(bot.store.list_log()) == 1


def test_twilio_charges_its_fee_on_inbound_messages_too_once_per_message(bot: Bot) -> None:
    for _ in range(2):  # a retried webhook is not charged twice
        assert bot.handle(twilio_request(T1_PARAMS)).status == 200
    entries = [e for e in bot.store.ledger() if e.source == "inbound"]
    assert [(e.provider, e.amount, e.category) for e in entries] == [("twilio", Decimal("0.005"), "inbound")]
    report = bot.costs.report(entries[0].month)
    assert report.fees()["inbound"] == Decimal("0.005")
