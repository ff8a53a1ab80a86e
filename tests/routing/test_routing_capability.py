"""The router asks each provider whether it can carry a kind (``supports``) before any request,
so a reply, a business-initiated message and a failover all go where the kind can go."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from eki_whatsapp.messages import Contact, Contacts, LocationRequest, Text
from eki_whatsapp.providers.base import ProviderDown, UnsupportedMessage
from eki_whatsapp.routing import Router

from .conftest import USER, inbound
from .fakes import Clock, FakeProvider

CARD = Contacts([Contact("Eki support", phones=["+34910000000"])])


class PickyProvider(FakeProvider):
    """A fake that, like Twilio, cannot carry contact cards or location requests."""

    def supports(self, message: Any) -> bool:
        return not isinstance(message, (Contacts, LocationRequest))

    def unsupported_reason(self, message: Any) -> str | None:
        return None if self.supports(message) else "no contact cards here"


def test_a_reply_the_inbound_channel_cannot_carry_goes_where_it_can(
    make_router: Callable[..., Router], meta: FakeProvider, clock: Clock, store: Any
) -> None:
    twilio = PickyProvider("twilio", "14155238886")
    router = make_router(providers={"meta": meta, "twilio": twilio})
    store.record_inbound(inbound("meta", clock()))  # the user's Meta window is open too
    receipt = router.send(USER, CARD, inbound=inbound("twilio", clock()))
    assert receipt.provider == "meta" and twilio.attempts == 0
    # A kind Twilio can carry still answers on the inbound channel.
    assert router.send(USER, Text("ok"), inbound=inbound("twilio", clock())).provider == "twilio"


def test_failover_never_picks_a_provider_that_cannot_carry_the_kind(
    make_router: Callable[..., Router], meta: FakeProvider, clock: Clock, store: Any
) -> None:
    twilio = PickyProvider("twilio", "14155238886")
    router = make_router(providers={"meta": meta, "twilio": twilio})
    store.record_inbound(inbound("meta", clock()))
    store.record_inbound(inbound("twilio", clock()))
    meta.fail_next.append(ProviderDown("down", provider="meta"))
    with pytest.raises(ProviderDown):
        router.send(USER, LocationRequest("Where are you?"), queue=False)
    assert twilio.attempts == 0  # Twilio was never tried with a kind it refuses


def test_nobody_can_carry_it_is_refused_before_any_request_and_logged(
    make_router: Callable[..., Router], clock: Clock, store: Any
) -> None:
    twilio = PickyProvider("twilio", "14155238886")
    router = make_router(providers={"twilio": twilio}, whatsapp_provider="twilio")
    store.record_inbound(inbound("twilio", clock()))
    with pytest.raises(UnsupportedMessage, match="twilio: no contact cards here"):
        router.send(USER, CARD)
    assert twilio.attempts == 0
    (row,) = [r for r in store.list_log() if r.direction == "out"]
    assert row.status == "failed" and row.reason == "unsupported"
