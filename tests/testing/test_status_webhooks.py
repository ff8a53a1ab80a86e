"""The fakes post signed status webhooks that a real Bot behind serve_bot accepts and logs."""

from __future__ import annotations

import httpx

from eki_whatsapp import MemoryStore
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_text, twilio_text

from .conftest import APP_SECRET, TWILIO_TOKEN, Stack


def echo(stack: Stack) -> None:
    @stack.bot.on_message
    def reply(message, ctx):
        ctx.reply(f"eco: {message.text}")


def test_meta_reply_goes_sent_delivered_read(stack):
    echo(stack)
    assert stack.post(meta_text("hola", sender="5215512345678")).status_code == 200
    stack.flush()
    [sent] = stack.graph.sent
    assert (sent.to, sent.text) == ("5215512345678", "eco: hola")
    assert [d.status for d in stack.graph.webhooks] == ["sent", "delivered", "read"]
    assert all(d.ok for d in stack.graph.webhooks)
    assert [s.status for s in stack.seen.statuses] == ["sent", "delivered", "read"]
    assert {s.message_id for s in stack.seen.statuses} == {sent.id}
    row = stack.bot.store.get_message("meta", sent.id)
    assert row is not None and row.direction == "out" and row.status == "read"
    assert stack.seen.statuses[0].pricing.category == "service"


def test_twilio_reply_goes_sent_delivered_read_signed_with_the_auth_token(stack):
    echo(stack)
    assert stack.post(twilio_text("oi", sender="+5511987650000")).status_code == 200
    stack.flush()
    [sent] = stack.twilio.sent
    assert (sent.to, sent.text) == ("+5511987650000", "eco: oi")
    assert [d.status for d in stack.twilio.webhooks] == ["sent", "delivered", "read"]
    assert all(d.ok for d in stack.twilio.webhooks)
    row = stack.bot.store.get_message("twilio", sent.id)
    assert row is not None and row.status == "read"
    assert [s.status for s in stack.bot.store.statuses("twilio", sent.id)] == ["sent", "delivered", "read"]
    # the fake's own resource follows the statuses it emitted
    assert stack.twilio.message(sent.id).statuses == ["sent", "delivered", "read"]


def test_closed_window_fails_in_a_status_webhook(graph, twilio_api):
    stack = Stack(graph, twilio_api, policy="meta")
    try:
        echo(stack)
        graph.close_window("5215500000001")
        stack.post(meta_text("hola", sender="5215500000001"))
        stack.flush()
        [delivery] = graph.webhooks
        assert (delivery.status, delivery.ok) == ("failed", True)
        [status] = stack.seen.statuses
        assert status.failed and status.errors[0].code == 131047
        row = stack.bot.store.get_message("meta", graph.sent[0].id)
        assert row.status == "failed" and row.error_code == 131047
    finally:
        stack.close()


def test_twilio_closed_window_reports_63016(stack):
    echo(stack)
    stack.twilio.close_window("whatsapp:+5511987650001")
    stack.post(twilio_text("oi", sender="+5511987650001"))
    stack.flush()
    [status] = stack.seen.statuses
    assert (status.provider, status.status, status.errors[0].code) == ("twilio", "failed", 63016)


def test_templates_still_go_through_a_closed_window(graph):
    graph.close_window("16505551234")
    body = {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "template",
        "template": {"name": "hello", "language": {"code": "es"}},
    }
    with httpx.Client(headers={"Authorization": f"Bearer {graph.token}"}) as c:
        c.post(graph.messages_url, json=body)
    graph.flush()
    assert [d.status for d in graph.webhooks] == ["sent", "delivered", "read"]
    assert (
        graph.webhooks[0].payload.data["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"][
            "category"
        ]
        == "utility"
    )


def test_fail_delivery_reports_the_given_code(graph):
    graph.fail_delivery("16505551234", 131026)
    graph.webhook_url = None
    with httpx.Client(headers={"Authorization": f"Bearer {graph.token}"}) as c:
        wamid = c.post(
            graph.messages_url,
            json={
                "messaging_product": "whatsapp",
                "to": "16505551234",
                "type": "text",
                "text": {"body": "x"},
            },
        ).json()["messages"][0]["id"]
    graph.flush()
    assert graph.message(wamid).status == "failed"
    [delivery] = graph.webhooks
    assert delivery.error == "no webhook URL configured" and not delivery.ok
    status = delivery.payload.data["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["errors"][0]["code"] == 131026


def test_a_webhook_that_refuses_is_recorded_not_raised(stack):
    echo(stack)
    stack.graph.app_secret = "not-the-app-secret"
    stack.post(meta_text("hola"))
    stack.flush()
    assert [d.http_status for d in stack.graph.webhooks] == [403, 403, 403]
    assert not stack.seen.statuses
    assert "X-Hub-Signature-256" in stack.graph.webhooks[0].error


def test_an_unreachable_webhook_is_recorded():
    with FakeTwilioAPI() as dead:
        url = dead.base_url + "/webhook"
    with FakeTwilioAPI(webhook_url=url, auto_status=("sent",)) as fake:
        with httpx.Client(auth=(fake.account_sid, fake.auth_token)) as c:
            c.post(
                fake.messages_url,
                data={"To": "whatsapp:+5511987654321", "From": "whatsapp:+14155238886", "Body": "x"},
            )
        assert fake.flush()
        [delivery] = fake.webhooks
        assert delivery.http_status is None and delivery.error.startswith("ConnectError")


def test_manual_emission_when_auto_status_is_off(stack):
    echo(stack)
    stack.graph.auto_status = ()
    stack.post(meta_text("hola"))
    stack.flush()
    assert stack.graph.webhooks == []
    wamid = stack.graph.sent[0].id
    stack.graph.emit_statuses(wamid, ["delivered"])
    delivery = stack.graph.emit_status(wamid, "read")
    assert delivery.ok and delivery.status == "read"
    stack.flush()
    assert [s.status for s in stack.seen.statuses] == ["delivered", "read"]
    assert stack.bot.store.get_message("meta", wamid).status == "read"


def test_twilio_status_callback_param_wins(twilio_api):
    from eki_whatsapp import Bot, Settings
    from eki_whatsapp.testing import serve_bot

    settings = Settings(
        _env_file=None,
        whatsapp_provider="twilio",
        whatsapp_store_url="memory://",
        **twilio_api.settings_fields(),
    )
    bot = Bot(settings, store=MemoryStore(), providers={}, inline=True)
    statuses = []
    bot.on_status(statuses.append)
    with serve_bot(bot, path="/twilio/status") as server:
        twilio_api.webhook_url = "http://127.0.0.1:9/never-used"
        with httpx.Client(auth=(twilio_api.account_sid, TWILIO_TOKEN)) as c:
            c.post(
                twilio_api.messages_url,
                data={
                    "To": "whatsapp:+5511987654321",
                    "From": "whatsapp:+14155238886",
                    "Body": "x",
                    "StatusCallback": server.url + "?tenant=7",
                },
            )
        assert twilio_api.flush()
    bot.close()
    assert [d.url for d in twilio_api.webhooks] == [server.url + "?tenant=7"] * 3
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]


def test_close_drops_queued_webhooks_quickly():
    fake = FakeGraphAPI(webhook_url="http://127.0.0.1:9/none", app_secret=APP_SECRET)
    with httpx.Client(headers={"Authorization": f"Bearer {fake.token}"}) as c:
        for _ in range(5):
            c.post(
                fake.messages_url,
                json={
                    "messaging_product": "whatsapp",
                    "to": "1650555",
                    "type": "text",
                    "text": {"body": "x"},
                },
            )
    fake.close()
    assert len(fake.sent) == 5 and len(fake.webhooks) <= 15
