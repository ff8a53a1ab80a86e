"""Nothing in the router is written for two named providers: a third one is priced, routed,
failed over and given a breaker like Meta and Twilio; an allowance comes from the price table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eki_whatsapp.costs import Costs, PriceBook
from eki_whatsapp.messages import Template
from eki_whatsapp.providers.base import ProviderDown
from eki_whatsapp.routing import Router

from .conftest import META_ID, TWILIO_NUMBER, USER, inbound, make_settings
from .fakes import Clock, FakeProvider

PROMO = Template("spring_promo", "en_US", content_sid="HX" + "1" * 32)
ACME_NUMBER = "15550001111"


def book(**extra_tables: Any) -> PriceBook:
    return PriceBook.from_dict(
        {
            "markets": {"US": "na"},
            "meta": [{"effective": "2025-07-01", "model": "PMP", "rates": {"na": {"marketing": "0.03"}}}],
            "twilio": [
                {"effective": "2025-07-01", "model": "fee", "includes": "meta", "fee_per_message": "0.005"}
            ],
            **extra_tables,
        }
    )


def test_a_third_provider_is_priced_routed_and_failed_over(store: Any, clock: Clock) -> None:
    acme = FakeProvider("acme", ACME_NUMBER)
    meta, twilio = FakeProvider("meta", META_ID), FakeProvider("twilio", TWILIO_NUMBER)
    prices = book(acme=[{"effective": "2025-07-01", "model": "PMP", "rates": {"na": {"marketing": "0.01"}}}])
    router = Router(
        {"meta": meta, "twilio": twilio, "acme": acme},
        store,
        make_settings(),
        clock=clock,
        costs=Costs(store, prices, clock=clock),
    )
    assert router.policy_providers() == ["meta", "twilio", "acme"]
    assert router.choose(USER, PROMO, category="marketing") == ("acme", "cheapest")

    acme.fail_next.append(ProviderDown("down", provider="acme"))
    receipt = router.send(USER, PROMO, category="marketing")
    assert receipt.provider == "meta"
    assert router.breakers["acme"].failures == 1
    assert (
        router.costs.report("2026-09").line("meta", "marketing").known_amount
        == prices.quote("meta", "marketing", "na", at=clock.now, in_window=False).amount
    )


def test_a_reply_to_a_third_provider_goes_out_on_it(store: Any, clock: Clock) -> None:
    acme = FakeProvider("acme", ACME_NUMBER)
    router = Router({"acme": acme}, store, make_settings(), clock=clock)
    message = replace(inbound("meta", clock.now), provider="acme", recipient=ACME_NUMBER)
    store.record_inbound(message)
    receipt = router.send(USER, "Thanks!", inbound=message)
    assert receipt.provider == "acme"
    assert store.list_log(direction="out", limit=1)[0].reason == "reply-channel"


def test_a_free_allowance_in_the_price_table_routes_without_any_setting(store: Any, clock: Clock) -> None:
    meta, twilio = FakeProvider("meta", META_ID), FakeProvider("twilio", TWILIO_NUMBER)
    prices = book(
        twilio=[
            {
                "effective": "2025-07-01",
                "model": "PMP",
                "rates": {"na": {"marketing": "0.02"}},
                "free_allowance": {"per_month": 2, "categories": ["marketing"]},
            }
        ]
    )
    router = Router(
        {"meta": meta, "twilio": twilio},
        store,
        make_settings(),
        clock=clock,
        costs=Costs(store, prices, clock=clock),
    )
    sent = [router.send(f"1650555{i:04d}", PROMO, category="marketing") for i in range(3)]
    assert [r.provider for r in sent] == ["twilio", "twilio", "twilio"]
    reasons = [row.reason for row in store.list_log(direction="out", limit=10)[::-1]]
    assert reasons == ["free-allowance", "free-allowance", "cheapest"]
    assert router.costs.allowance_left("twilio") == 0
    assert router.costs.report("2026-09").line("twilio", "marketing").free == 2
