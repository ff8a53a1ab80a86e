"""Templates managed from code, end to end against the fake Graph and Twilio APIs:
push → pending → approved (Meta by webhook, Twilio by polling) → sent by name on both providers.

Request shapes: Meta's message_templates API
(https://developers.facebook.com/docs/whatsapp/business-management-api/message-templates) and
Twilio's Content API and approval requests
(https://www.twilio.com/docs/content/content-api-resources,
https://www.twilio.com/docs/content/create-and-send-your-first-content-api-template).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from eki_whatsapp.messages import Template
from eki_whatsapp.providers import UnsupportedMessage
from eki_whatsapp.sandbox import Sandbox
from eki_whatsapp.templates import HeaderMedia, QuickReply, TemplateDefinition, UrlButton

USER = "+5511987654321"

SHIPPED = TemplateDefinition(
    name="order_shipped",
    language="en_US",
    category="UTILITY",
    header=HeaderMedia("video", "https://cdn.example.com/clip.mp4"),
    body="Hi {{1}}, your order {{2}} is on its way.",
    examples=["Sheena", "8127"],
    footer="Eki shop",
    buttons=[QuickReply("Stop updates"), UrlButton("Track", "https://example.com/t/{{1}}", "8127")],
)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(build=None) as sandbox:
        yield sandbox


def template_requests(sb: Sandbox) -> list[str]:
    graph = [r.path for r in sb.graph.requests if "message_templates" in r.path]
    twilio = [r.path for r in sb.twilio.requests if r.path.startswith("/v1/Content")]
    return graph + twilio


def test_push_creates_the_template_on_both_providers_as_documented(sb: Sandbox) -> None:
    results = sb.bot.templates.push([SHIPPED])
    assert {(r.provider, r.action, r.state.status if r.state else None) for r in results} == {
        ("meta", "created", "pending"),
        ("twilio", "created", "pending"),
    }
    created = next(r for r in sb.graph.requests if r.path.endswith("/message_templates"))
    assert created.json == {
        "name": "order_shipped",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {
                "type": "HEADER",
                "format": "VIDEO",
                "example": {"header_handle": ["https://cdn.example.com/clip.mp4"]},
            },
            {
                "type": "BODY",
                "text": "Hi {{1}}, your order {{2}} is on its way.",
                "example": {"body_text": [["Sheena", "8127"]]},
            },
            {"type": "FOOTER", "text": "Eki shop"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop updates"},
                    {
                        "type": "URL",
                        "text": "Track",
                        "url": "https://example.com/t/{{1}}",
                        "example": ["https://example.com/t/8127"],
                    },
                ],
            },
        ],
    }
    content = sb.twilio.content_named("order_shipped")
    assert content["types"] == {
        "twilio/card": {
            "title": "Hi {{1}}, your order {{2}} is on its way.",
            "subtitle": "Eki shop",
            "media": ["https://cdn.example.com/clip.mp4"],
            "actions": [
                {"type": "QUICK_REPLY", "title": "Stop updates", "id": "Stop updates"},
                {"type": "URL", "title": "Track", "url": "https://example.com/t/{{1}}"},
            ],
        }
    }
    assert content["variables"] == {"1": "Sheena", "2": "8127"}
    assert content["approval"]["name"] == "order_shipped" and content["approval"]["category"] == "UTILITY"


def test_push_is_idempotent_and_resubmits_only_a_changed_template(sb: Sandbox) -> None:
    sb.bot.templates.push([SHIPPED])
    before = len(template_requests(sb))
    again = sb.bot.templates.push([SHIPPED])
    assert {r.action for r in again} == {"unchanged"} and len(template_requests(sb)) == before
    changed = TemplateDefinition(
        **{**SHIPPED.to_json(), "body": "Hello {{1}}, order {{2}} left."}
        | {"header": SHIPPED.header, "buttons": SHIPPED.buttons}
    )  # type: ignore[arg-type]
    results = sb.bot.templates.push([changed])
    assert {(r.provider, r.action) for r in results} == {("meta", "updated"), ("twilio", "updated")}
    meta_id = sb.graph.template("order_shipped")["id"]
    assert any(r.path.endswith(f"/{meta_id}") and r.method == "POST" for r in sb.graph.requests)


def test_lifecycle_pending_then_approved_then_sent_by_name_on_both_providers(sb: Sandbox) -> None:
    templates = sb.bot.templates
    templates.push([SHIPPED])
    message = templates.get("order_shipped").message("Ana", "8127", url_suffix="8127")

    # Pending: neither provider can carry it yet, and the router refuses before any request.
    assert not sb.bot.providers["meta"].supports(message)  # type: ignore[attr-defined]
    assert not sb.bot.providers["twilio"].supports(message)  # type: ignore[attr-defined]
    sends = len(sb.graph.sent) + len(sb.twilio.sent)
    with pytest.raises(UnsupportedMessage, match="not approved on Meta yet"):
        sb.bot.send(USER, message)
    assert len(sb.graph.sent) + len(sb.twilio.sent) == sends

    # Meta approves: the status webhook updates the record.
    delivery = sb.graph.set_template_status("order_shipped", "APPROVED")
    assert delivery.ok
    sb.settle()
    (record,) = templates.list()
    assert record.state("meta").status == "approved"  # type: ignore[union-attr]
    assert record.state("twilio").status == "pending"  # type: ignore[union-attr]

    # Twilio approves: Twilio sends no webhook for this; a status call polls it.
    sb.twilio.set_approval("order_shipped", "approved")
    (record,) = templates.status()
    assert record.state("twilio").status == "approved"  # type: ignore[union-attr]
    twilio_sid = record.state("twilio").id  # type: ignore[union-attr]

    # Sent by name through each provider: Meta by name/language, Twilio by the ContentSid.
    sb.bot.send(USER, message, provider="meta")
    sent = sb.graph.sent[-1].body["template"]
    assert sent["name"] == "order_shipped" and sent["language"] == {"code": "en_US"}
    assert sent["components"][0] == {
        "type": "header",
        "parameters": [{"type": "video", "video": {"link": "https://cdn.example.com/clip.mp4"}}],
    }
    sb.bot.send(USER, message, provider="twilio")
    twilio_sent = sb.twilio.sent[-1]
    assert twilio_sent.body["ContentSid"] == twilio_sid
    assert json.loads(twilio_sent.body["ContentVariables"]) == {"1": "Ana", "2": "8127"}

    # Failover without the caller knowing either id: Meta down, the same message goes by Twilio.
    with sb.graph.outage("503"):
        receipt = sb.bot.send(USER, Template("order_shipped", "en_US", body=["Ana", "8127"]))
    assert receipt.provider == "twilio" and sb.twilio.sent[-1].body["ContentSid"] == twilio_sid


def test_a_rejection_shows_its_reason_and_a_category_change_is_recorded(sb: Sandbox) -> None:
    sb.bot.templates.push([SHIPPED])
    sb.graph.set_template_status("order_shipped", "REJECTED", reason="INVALID_FORMAT")
    sb.graph.set_template_category("order_shipped", "MARKETING")
    sb.settle()
    state = sb.bot.templates.list()[0].state("meta")
    assert state is not None and (state.status, state.reason, state.category) == (
        "rejected",
        "INVALID_FORMAT",
        "MARKETING",
    )
    sb.twilio.set_approval("order_shipped", "rejected", reason="Body starts with a variable")
    twilio_state = sb.bot.templates.status()[0].state("twilio")
    assert twilio_state is not None and twilio_state.reason == "Body starts with a variable"


def test_a_template_made_by_hand_on_meta_is_adopted_and_edited(sb: Sandbox) -> None:
    meta = sb.bot.providers["meta"]
    remote = meta.create_template(SHIPPED)  # type: ignore[attr-defined]
    results = sb.bot.templates.push([SHIPPED])
    meta_result = next(r for r in results if r.provider == "meta")
    assert meta_result.action == "updated" and meta_result.state is not None
    assert meta_result.state.id == remote.id
