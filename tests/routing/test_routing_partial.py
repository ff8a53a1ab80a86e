"""A long text that fails part-way: the parts sent are logged and never sent twice."""

from __future__ import annotations

from typing import Any

from eki_whatsapp.messages import Text
from eki_whatsapp.providers.base import ProviderDown

from .conftest import USER, inbound
from .fakes import FakeProvider


def test_failover_sends_only_the_unsent_rest(
    make_router: Any, clock: Any, store: Any, meta: FakeProvider, twilio: FakeProvider
) -> None:
    meta.text_limit = 40  # type: ignore[attr-defined]
    paragraphs = [
        "Primera parte del mensaje largo.",
        "Segunda parte, que también va.",
        "Tercera y última parte.",
    ]
    body = "\n\n".join(paragraphs)
    down = ProviderDown("connection reset", provider="meta")
    down.sent_message_ids = ("wamid.PART1",)
    meta.fail_next.append(down)
    store.record_inbound(inbound("meta", clock()))
    store.record_inbound(inbound("twilio", clock(), msg_id="tw-1"))
    router = make_router()
    receipt = router.send(USER, Text(body), inbound=inbound("meta", clock()))
    assert receipt.provider == "twilio"
    [(_, rest)] = twilio.sent
    assert rest.body == "\n\n".join(paragraphs[1:])  # the first part is not repeated
    part = store.get_message("meta", "wamid.PART1")
    assert part is not None and part.text == paragraphs[0] and part.extra["partial"] is True
    rows = store.list_log(direction="out")
    assert [r.status for r in rows if r.provider == "meta"].count("failed") == 1
    assert any(r.reason == "failover:ProviderDown" and r.provider == "twilio" for r in rows)
