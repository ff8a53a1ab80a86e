"""The real provider classes (MetaCloud, Twilio) against the fakes, and the whole loop."""

from __future__ import annotations

import pytest

from eki_whatsapp import MediaRef
from eki_whatsapp.messages import Text
from eki_whatsapp.providers.base import AuthError, ProviderDown, RateLimited
from eki_whatsapp.providers.meta import MetaCloud
from eki_whatsapp.providers.twilio import Twilio
from eki_whatsapp.testing import meta_image, meta_text, twilio_media

from .conftest import providers_for


def test_metacloud_send_reaches_the_fake(graph):
    meta = providers_for(graph)["meta"]
    receipt = meta.send("16505551234", Text("Hola"))
    [sent] = graph.sent
    assert receipt.message_id == sent.id and receipt.provider == "meta"
    assert sent.body["text"]["body"] == "Hola" and sent.body["messaging_product"] == "whatsapp"
    meta.close()


def test_metacloud_auth_error_from_the_fake(graph):
    meta = MetaCloud("wrong-token", graph.phone_number_id, base_url=graph.base_url)
    with pytest.raises(AuthError) as info:
        meta.send("16505551234", Text("x"))
    assert info.value.code == 190 and info.value.http_status == 401
    assert "wrong-token" not in str(info.value)
    meta.close()


def test_metacloud_retries_through_injected_5xx(graph):
    sleeps: list[float] = []
    meta = providers_for(graph, max_attempts=3, base_delay=0.01, sleep=sleeps.append)["meta"]
    graph.fail_next(http_status=503, times=2)
    receipt = meta.send("16505551234", Text("Hola"))
    assert receipt.attempts == 3 and len(sleeps) == 2
    assert [r.status for r in graph.requests] == [503, 503, 200]
    meta.close()


def test_metacloud_typed_errors_for_rate_limit_and_outage(graph):
    meta = providers_for(graph)["meta"]
    graph.fail_next(130429)
    with pytest.raises(RateLimited):
        meta.send("16505551234", Text("x"))
    with graph.outage(), pytest.raises(ProviderDown):
        meta.send("16505551234", Text("x"))
    assert meta.send("16505551234", Text("back")).message_id == graph.sent[-1].id
    meta.close()


def test_metacloud_read_receipt_upload_and_download(graph):
    meta = providers_for(graph)["meta"]
    assert meta.mark_as_read("wamid.IN", typing=True)
    assert graph.read_receipts == [("wamid.IN", True)]
    media_id = meta.upload_media(b"%PDF-1.7 demo", "application/pdf", filename="a.pdf")
    assert graph.media[media_id].data == b"%PDF-1.7 demo"
    assert meta.download_media(MediaRef(provider="meta", id=media_id)) == b"%PDF-1.7 demo"
    meta.close()


def test_twilio_send_reaches_the_fake(twilio_api):
    twilio = providers_for(twilio=twilio_api)["twilio"]
    receipt = twilio.send("+5511987654321", Text("Olá"))
    [sent] = twilio_api.sent
    assert receipt.message_id == sent.id and receipt.status == "queued"
    assert (sent.body["To"], sent.body["From"], sent.body["Body"]) == (
        "whatsapp:+5511987654321",
        "whatsapp:+14155238886",
        "Olá",
    )
    twilio.close()


def test_twilio_auth_error_and_media_download(twilio_api):
    bad = Twilio(twilio_api.account_sid, "wrong", from_=twilio_api.number, base_url=twilio_api.base_url)
    with pytest.raises(AuthError) as info:
        bad.send("+5511987654321", Text("x"))
    assert info.value.code == 20003
    bad.close()
    twilio = providers_for(twilio=twilio_api)["twilio"]
    url = twilio_api.add_media(b"jpeg!", "image/jpeg")
    assert twilio.download_media(MediaRef(provider="twilio", url=url)) == b"jpeg!"
    twilio.close()


def test_whole_loop_both_providers_media_and_failover(stack):
    @stack.bot.on_message
    def reply(message, ctx):
        if message.media:
            data = ctx.bot.providers[message.provider].download_media(message.media[0])
            ctx.reply(f"got {len(data)} bytes")
        else:
            ctx.reply(f"eco: {message.text}")

    image_id = stack.graph.add_media(b"\x89PNG....", "image/png")
    stack.post(meta_image(image_id, sha256=stack.graph.media[image_id].sha256, sender="5215512345678"))
    # the same user writes on both channels, so both 24-hour windows are open
    stack.post(twilio_media(stack.twilio.add_media(b"abc", "image/jpeg"), sender="+5215512345678"))
    stack.flush()
    assert [m.text for m in stack.graph.sent] == ["got 8 bytes"]
    assert [m.text for m in stack.twilio.sent] == ["got 3 bytes"]

    # Meta goes down: the reply fails over to Twilio, where the user's window is open too
    with stack.graph.outage():
        assert stack.post(meta_text("sigues ahí?", sender="5215512345678")).status_code == 200
    stack.flush()
    assert stack.twilio.sent[-1].text == "eco: sigues ahí?"
    assert stack.twilio.sent[-1].to == "+5215512345678"
    row = stack.bot.store.get_message("twilio", stack.twilio.sent[-1].id)
    assert row.reason.startswith("failover:") and row.status == "read"
