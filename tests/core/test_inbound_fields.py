"""Inbound fields WhatsApp sends that used to live only in ``.raw``: typed on the events.

Payload shapes are Meta's webhook reference examples and Twilio's WhatsApp webhook parameters;
each test names its page.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from eki_whatsapp.events import InboundMessage, StatusUpdate
from eki_whatsapp.providers.meta.parse import parse_body
from eki_whatsapp.providers.twilio.parse import parse_params


def meta_value(message: dict[str, Any] | None = None, **value: Any) -> dict[str, Any]:
    body = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        **value,
    }
    if message is not None:
        body.setdefault("contacts", [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}])
        body["messages"] = [{"from": "16505551234", "id": "wamid.IN", "timestamp": "1749416383", **message}]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": body}]}],
    }


def one_message(message: dict[str, Any], **value: Any) -> InboundMessage:
    (event,) = parse_body(meta_value(message, **value))
    assert isinstance(event, InboundMessage)
    return event


def test_list_reply_description() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#list-messages
    event = one_message(
        {
            "type": "interactive",
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": "exp_1d", "title": "Next day", "description": "€9.90"},
            },
        }
    )
    assert (event.payload, event.text, event.reply_description) == ("exp_1d", "Next day", "€9.90")


def test_flow_answer_is_parsed() -> None:
    # https://developers.facebook.com/docs/whatsapp/flows/reference/responsemsgwebhook
    event = one_message(
        {
            "type": "interactive",
            "interactive": {
                "type": "nfm_reply",
                "nfm_reply": {
                    "name": "flow",
                    "body": "Sent",
                    "response_json": '{"flow_token": "booking-8127", "party": 2, "date": "2026-06-09"}',
                },
            },
        }
    )
    reply = event.flow_reply
    assert reply is not None and (reply.name, reply.body, reply.flow_token) == (
        "flow",
        "Sent",
        "booking-8127",
    )
    assert reply.response == {"flow_token": "booking-8127", "party": 2, "date": "2026-06-09"}
    assert event.interactive_type == "nfm_reply"


def test_a_flow_answer_with_broken_json_keeps_the_text() -> None:
    event = one_message(
        {
            "type": "interactive",
            "interactive": {"type": "nfm_reply", "nfm_reply": {"name": "flow", "response_json": "{"}},
        }
    )
    assert event.flow_reply is not None and event.flow_reply.response == {}
    assert event.flow_reply.response_json == "{"


def test_call_permission_reply() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/calling/user-call-permissions
    event = one_message(
        {
            "type": "interactive",
            "interactive": {
                "type": "call_permission_reply",
                "call_permission_reply": {
                    "response": "accept",
                    "is_permanent": False,
                    "expiration_timestamp": 1749502783,
                    "response_source": "user_action",
                },
            },
        }
    )
    permission = event.call_permission
    assert permission is not None and permission.response == "accept" and not permission.permanent
    assert permission.expires_at == datetime(2025, 6, 9, 20, 59, 43, tzinfo=timezone.utc)
    assert permission.source == "user_action"


def test_product_enquiry_names_the_referred_product() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#product-enquiry-message
    event = one_message(
        {
            "type": "text",
            "text": {"body": "Is this in stock?"},
            "context": {
                "from": "15550783881",
                "id": "wamid.CATALOG",
                "referred_product": {"catalog_id": "194910842419823", "product_retailer_id": "sku-8127"},
            },
        }
    )
    assert event.referred_product is not None
    assert (event.referred_product.catalog_id, event.referred_product.product_id) == (
        "194910842419823",
        "sku-8127",
    )


def test_referral_media_and_welcome_message() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#received-message-triggered-by-click-to-whatsapp-ads
    event = one_message(
        {
            "type": "text",
            "text": {"body": "Hi"},
            "referral": {
                "source_url": "https://fb.me/abc",
                "source_id": "120",
                "source_type": "ad",
                "headline": "Sale",
                "body": "50% off",
                "media_type": "video",
                "video_url": "https://cdn.example.com/ad.mp4",
                "thumbnail_url": "https://cdn.example.com/ad.jpg",
                "ctwa_clid": "ARAk",
                "welcome_message": {"text": "Hi! Ask us about the sale"},
            },
        }
    )
    referral = event.referral
    assert referral is not None
    assert (referral.video_url, referral.thumbnail_url, referral.image_url) == (
        "https://cdn.example.com/ad.mp4",
        "https://cdn.example.com/ad.jpg",
        None,
    )
    assert referral.welcome_message == "Hi! Ask us about the sale"


def test_twilio_referral_media() -> None:
    # https://www.twilio.com/docs/whatsapp/api#click-to-whatsapp-ads (Referral* parameters)
    (event,) = parse_params(
        {
            "MessageSid": "SM1",
            "From": "whatsapp:+16505551234",
            "To": "whatsapp:+14155238886",
            "Body": "Hi",
            "ReferralSourceId": "120",
            "ReferralSourceType": "ad",
            "ReferralMediaId": "1234",
            "ReferralMediaContentType": "image/jpeg",
            "ReferralMediaUrl": "https://cdn.example.com/ad.jpg",
            "ReferralNumMedia": "1",
        }
    )
    assert isinstance(event, InboundMessage) and event.referral is not None
    assert (event.referral.image_url, event.referral.media_id, event.referral.video_url) == (
        "https://cdn.example.com/ad.jpg",
        "1234",
        None,
    )


def test_an_edited_media_message_carries_the_new_caption_and_media() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/reference/messages/edit
    event = one_message(
        {
            "type": "edit",
            "edit": {
                "original_message_id": "wamid.ORIG",
                "message": {
                    "type": "image",
                    "image": {
                        "caption": "The right photo",
                        "mime_type": "image/jpeg",
                        "sha256": "abc",
                        "id": "999",
                    },
                },
            },
        }
    )
    assert (event.type, event.original_id, event.text) == ("edit", "wamid.ORIG", "The right photo")
    assert event.media[0].id == "999" and event.media[0].caption == "The right photo"


def test_an_edited_text_and_a_revoke_name_the_original() -> None:
    edit = one_message(
        {
            "type": "edit",
            "edit": {
                "original_message_id": "wamid.O",
                "message": {"type": "text", "text": {"body": "fixed"}},
            },
        }
    )
    assert (edit.text, edit.original_id, edit.media) == ("fixed", "wamid.O", ())
    revoke = one_message({"type": "revoke", "revoke": {"original_message_id": "wamid.O"}})
    assert revoke.original_id == "wamid.O"


def test_username_from_the_contact_profile() -> None:
    # https://developers.facebook.com/docs/whatsapp/business-scoped-user-ids (profile.username)
    event = one_message(
        {"type": "text", "text": {"body": "hi"}},
        contacts=[{"profile": {"name": "Sheena", "username": "@sheena"}, "wa_id": "16505551234"}],
    )
    assert (event.profile_name, event.username) == ("Sheena", "@sheena")


def test_status_conversation_expiration_and_group_participant() -> None:
    # https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#message-status-updates
    # and the Groups API status example (recipient_type "group", recipient_participant_id).
    (status,) = parse_body(
        meta_value(
            statuses=[
                {
                    "id": "wamid.OUT",
                    "status": "delivered",
                    "timestamp": "1749416383",
                    "recipient_id": "120363000000000000",
                    "recipient_type": "group",
                    "recipient_participant_id": "16505551234",
                    "conversation": {
                        "id": "c1",
                        "expiration_timestamp": "1749502783",
                        "origin": {"type": "service"},
                    },
                    "pricing": {"billable": True, "pricing_model": "PMP", "category": "service"},
                }
            ]
        )
    )
    assert isinstance(status, StatusUpdate)
    assert status.pricing is not None
    assert status.pricing.conversation_expires_at == datetime(2025, 6, 9, 20, 59, 43, tzinfo=timezone.utc)
    assert (status.recipient_type, status.group_participant, status.recipient) == (
        "group",
        "16505551234",
        "120363000000000000",
    )
