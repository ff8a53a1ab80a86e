"""Policy decisions: reply channel, 24-hour window, free allowance, weights, single-provider
policies, explicit provider, fallback template and ``WindowClosed``."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from eki_whatsapp import SQLiteStore
from eki_whatsapp.costs import Costs, PriceBook
from eki_whatsapp.errors import ConfigError
from eki_whatsapp.messages import Template, Text
from eki_whatsapp.providers.base import WindowClosed
from eki_whatsapp.routing import Router

from .conftest import META_ID, TWILIO_NUMBER, USER, inbound, make_settings
from .fakes import Clock, FakeProvider

PROMO = Template("spring_promo", "en_US", content_sid="HX" + "1" * 32)
FALLBACK = Template("please_reply", "en_US", content_sid="HX" + "2" * 32)


def last_out(store: Any) -> Any:
    return store.list_log(direction="out", limit=1)[0]


def test_reply_goes_out_on_the_inbound_channel(
    make_router: Callable[..., Router], store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    router = make_router()
    for provider, fake in (("twilio", twilio), ("meta", meta)):
        message = inbound(provider, clock.now, msg_id=f"in-{provider}")
        store.record_inbound(message)
        receipt = router.send(USER, "Thanks!", inbound=message)
        assert receipt.provider == provider
        assert fake.sent[-1][1] == Text("Thanks!")
        row = last_out(store)
        assert (row.provider, row.reason, row.category) == (provider, "reply-channel", "service")
        assert row.recipient == USER and row.sender == fake.business_number


def test_reply_channel_wins_even_when_the_other_window_is_cheaper(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    store.record_inbound(inbound("meta", clock.now, msg_id="m1"))
    message = inbound("twilio", clock.now, msg_id="t1")
    store.record_inbound(message)
    assert make_router().choose(USER, "ok", inbound=message) == ("twilio", "reply-channel")


def test_a_reply_to_a_message_inside_the_window_reads_no_window_from_the_store(
    make_router: Callable[..., Router], store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The message being answered opens the window by itself: deciding, pricing and reachability
    # need no read of the store for a reply.
    message = inbound("meta", clock.now, msg_id="m1")
    store.record_inbound(message)
    router = make_router()
    reads: list[tuple[str, ...]] = []
    real = store.last_inbound_at
    monkeypatch.setattr(store, "last_inbound_at", lambda *a: reads.append(a) or real(*a))
    clock.advance(hours=2)
    router.send(USER, "Thanks!", inbound=message)
    assert reads == []
    row = last_out(store)
    assert (row.provider, row.reason, row.category) == ("meta", "reply-channel", "service")
    assert router.costs.report().total == 0  # priced inside the window: free


def test_a_late_reply_reads_the_window_the_user_reopened_since(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    # A reply made after the answered message's own window closed (a queued send, a slow
    # handler) looks at the store: the user wrote again meanwhile, so a free-form reply may go.
    message = inbound("meta", clock.now, msg_id="m1")
    store.record_inbound(message)
    clock.advance(hours=30)
    store.record_inbound(inbound("meta", clock.now, msg_id="m2"))
    decision = make_router().decide(USER, "Sorry for the wait", inbound=message)
    assert (decision.provider, decision.reason, decision.fallback) == ("meta", "reply-channel", False)


def test_business_message_uses_the_provider_whose_window_is_open(
    make_router: Callable[..., Router], store: Any, clock: Clock, twilio: FakeProvider
) -> None:
    store.record_inbound(inbound("twilio", clock.now))
    clock.advance(hours=5)
    receipt = make_router().send("whatsapp:+" + USER, "Your table is ready")
    assert receipt.provider == "twilio"
    assert last_out(store).reason == "window-open"
    assert twilio.sent[0][0] == "whatsapp:+" + USER


def test_with_both_windows_open_the_cheaper_one_is_used(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    store.record_inbound(inbound("twilio", clock.now, msg_id="t"))
    store.record_inbound(inbound("meta", clock.now, msg_id="m"))
    # Free-form service messages are free on Meta; Twilio adds its per-message fee.
    assert make_router().choose(USER, "hello") == ("meta", "window-open")


def test_window_closes_after_24_hours_minus_the_margin(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    store.record_inbound(inbound("twilio", clock.now))
    router = make_router(whatsapp_window_margin_seconds=60, whatsapp_fallback_template="please_reply")
    clock.advance(hours=23, minutes=58)
    assert router.window_open("twilio", USER)
    clock.advance(minutes=1, seconds=1)
    assert not router.window_open("twilio", USER)
    decision = router.decide(USER, "still there?")
    assert decision.fallback and decision.reason == "fallback-template"


def test_free_form_to_a_closed_window_raises_window_closed_without_a_fallback(
    make_router: Callable[..., Router], store: Any, meta: FakeProvider, twilio: FakeProvider
) -> None:
    router = make_router()
    with pytest.raises(WindowClosed, match="WHATSAPP_FALLBACK_TEMPLATE"):
        router.send(USER, "Hello out of the blue")
    assert meta.attempts == twilio.attempts == 0
    row = last_out(store)
    assert (row.status, row.reason, row.extra["error"]) == ("failed", "window-closed", "WindowClosed")


def test_free_form_to_a_closed_window_sends_the_configured_fallback_template(
    make_router: Callable[..., Router], store: Any, meta: FakeProvider
) -> None:
    router = make_router(
        whatsapp_fallback_template="please_reply",
        whatsapp_fallback_template_language="en_US",
        whatsapp_fallback_template_content_sid="HX" + "2" * 32,
    )
    receipt = router.send(USER, "Hello out of the blue")
    assert receipt.kind == "template"
    sent = meta.sent[0][1]
    assert isinstance(sent, Template)
    assert (sent.name, sent.language, sent.content_sid) == ("please_reply", "en_US", "HX" + "2" * 32)
    row = last_out(store)
    assert row.reason == "fallback-template"
    assert row.category == "utility"
    assert row.extra["choice"] == "cheapest" and row.extra["original_kind"] == "text"


def test_fallback_template_can_be_a_function_of_the_user_and_message(
    make_router: Callable[..., Router], meta: FakeProvider
) -> None:
    seen: list[tuple[str, Any]] = []

    def fallback(user: str, message: Any) -> Template:
        seen.append((user, message))
        return Template("you_have_mail", "en", body=[user])

    make_router(fallback_template=fallback).send("+" + USER, "news")
    assert seen == [(USER, Text("news"))]
    assert meta.sent[0][1].body == (USER,)


def test_template_outside_any_window_goes_to_the_cheapest_provider(
    make_router: Callable[..., Router], store: Any, meta: FakeProvider
) -> None:
    make_router().send(USER, PROMO, category="marketing")
    assert meta.sent[0][1] is PROMO
    row = last_out(store)
    assert (row.provider, row.reason, row.category) == ("meta", "cheapest", "marketing")


def test_cheapest_follows_the_price_table(
    store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    # Negotiated rates where Twilio is cheaper for US marketing than Meta direct.
    book = PriceBook.from_dict(
        {
            "markets": {"US": "na"},
            "meta": [{"effective": "2025-07-01", "model": "PMP", "rates": {"na": {"marketing": "0.03"}}}],
            "twilio": [{"effective": "2025-07-01", "model": "PMP", "rates": {"na": {"marketing": "0.02"}}}],
        }
    )
    router = Router(
        {"meta": meta, "twilio": twilio},
        store,
        make_settings(),
        clock=clock,
        costs=Costs(store, book, clock=clock),
    )
    assert router.choose(USER, PROMO, category="marketing") == ("twilio", "cheapest")


def test_template_prefers_an_open_window_where_it_is_free(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    brazil = "5511987654321"
    # The student wrote to both numbers (Meta last week, Twilio now): both can reach them.
    store.record_inbound(inbound("meta", clock.now - timedelta(days=7), user=brazil, msg_id="old-b"))
    store.record_inbound(inbound("twilio", clock.now, user=brazil))
    router = make_router()
    # Utility templates are free inside the window (PMP): Twilio costs only its 0.005 fee,
    # less than Meta's 0.0068 Brazilian utility rate outside the window ...
    assert router.choose(brazil, PROMO, category="utility") == ("twilio", "window-open")
    # ... while a marketing template costs Meta's rate on both: Meta direct avoids the fee.
    assert router.choose(brazil, PROMO, category="marketing") == ("meta", "cheapest")
    # In the US, utility costs 0.0034 on Meta, less than Twilio's fee.
    store.record_inbound(inbound("meta", clock.now - timedelta(days=7), msg_id="old-u"))
    store.record_inbound(inbound("twilio", clock.now))
    assert router.choose(USER, PROMO, category="utility") == ("meta", "cheapest")


def test_a_template_goes_only_to_the_numbers_the_user_wrote_to_or_opted_in_on(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    router = make_router()
    # Nothing known of the user: the cheapest number may write first.
    assert router.choose(USER, PROMO, category="marketing") == ("meta", "cheapest")
    # A week ago they wrote to the Twilio number only: it is the only number that reaches them,
    # although Meta would be cheaper.
    store.record_inbound(inbound("twilio", clock.now - timedelta(days=7)))
    assert router.choose(USER, PROMO, category="marketing") == ("twilio", "cheapest")
    router.opt_in(USER, "meta")  # e.g. a sign-up form that names the Meta number
    assert router.choose(USER, PROMO, category="marketing") == ("meta", "cheapest")


@pytest.mark.parametrize("policy", ["meta", "twilio"])
def test_single_provider_policy_uses_only_that_provider(
    make_router: Callable[..., Router], store: Any, clock: Clock, policy: str
) -> None:
    store.record_inbound(inbound("meta" if policy == "twilio" else "twilio", clock.now))
    router = make_router(whatsapp_provider=policy)
    assert router.choose(USER, PROMO, category="marketing") == (policy, "policy")
    message = inbound("meta" if policy == "twilio" else "twilio", clock.now, msg_id="x")
    with pytest.raises(WindowClosed):
        router.decide(USER, "hi", inbound=message)  # the window is open only on the other one


def test_explicit_provider_is_used_and_unknown_one_is_a_config_error(
    make_router: Callable[..., Router], store: Any
) -> None:
    router = make_router()
    router.send(USER, PROMO, provider="twilio", category="marketing")
    assert (last_out(store).provider, last_out(store).reason) == ("twilio", "explicit")
    router_one = make_router(providers={"meta": FakeProvider("meta", META_ID)})
    with pytest.raises(ConfigError, match="'twilio' is not configured"):
        router_one.send(USER, PROMO, provider="twilio")


def test_the_seed_recipe_no_longer_sends_to_twilio_when_meta_is_cheaper(
    store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider
) -> None:
    # Issue 18: "first N free on Meta, then Twilio" was an allowance plus weights that overrode
    # the price. Now price decides (the weights only split ties), and the allowance is a
    # discount on the real price.
    settings = make_settings(whatsapp_meta_free_allowance=3, whatsapp_weights="meta=0,twilio=1")
    router = Router({"meta": meta, "twilio": twilio}, store, settings, clock=clock)
    sent = [router.send(f"1650555{i:04d}", PROMO, category="marketing").provider for i in range(5)]
    assert sent == ["meta"] * 5
    rows = store.list_log(direction="out", limit=10)[::-1]
    assert [r.reason for r in rows].count("free-allowance") == 3
    line = router.costs.report("2026-09").line("meta", "marketing")
    assert (line.free, line.discount, line.gross) == (3, Decimal("0.0750"), Decimal("0.1250"))
    assert line.known_amount == Decimal("0.0500")
    assert router.costs.allowance_left("meta") == 0


def test_allowance_is_monthly_and_survives_a_restart(tmp_path: Any, clock: Clock) -> None:
    path = tmp_path / "allowance.sqlite3"
    settings = make_settings(whatsapp_meta_free_allowance=2, whatsapp_weights="twilio=1")
    providers = {"meta": FakeProvider("meta", META_ID), "twilio": FakeProvider("twilio", TWILIO_NUMBER)}
    store = SQLiteStore(path)
    Router(providers, store, settings, clock=clock).send(USER, PROMO, category="utility")
    store.close()
    store = SQLiteStore(path)  # a restart
    router = Router(providers, store, settings, clock=clock)
    assert router.costs.allowance_left("meta") == 1
    # 1 slot left with more than half of September to come: behind an even pace, so it is kept
    # for the dearest kind of message (marketing), not spent on a utility template.
    assert router.choose("5511987654321", PROMO, category="utility") == ("meta", "cheapest")
    assert router.choose("5511987654321", PROMO, category="marketing") == ("meta", "free-allowance")
    router.send("5511987654321", PROMO, category="marketing")
    assert router.choose("5511987654322", PROMO, category="marketing") == ("meta", "cheapest")
    clock.advance(days=20)  # 2026-10: a new month, a new allowance
    assert router.choose("5511987654322", PROMO, category="utility") == ("meta", "free-allowance")
    store.close()


def test_allowance_categories_limit_what_it_covers(make_router: Callable[..., Router]) -> None:
    router = make_router(
        whatsapp_meta_free_allowance=10, whatsapp_free_allowance_categories="service,utility"
    )
    assert router.choose(USER, PROMO, category="utility")[1] == "free-allowance"
    assert router.choose(USER, PROMO, category="marketing")[1] == "cheapest"


def test_weights_split_traffic_within_tolerance(make_router: Callable[..., Router], store: Any) -> None:
    # Load balancing whatever the price is asked for explicitly (WHATSAPP_BALANCE); without it
    # the weights only split ties of price (issue 18).
    router = make_router(whatsapp_weights="meta=3,twilio=1", whatsapp_balance=True, rng=random.Random(7))
    n = 2000
    counts = {"meta": 0, "twilio": 0}
    for i in range(n):
        name, reason = router.choose(f"1650{i:07d}", PROMO, category="marketing")
        assert reason == "weighted"
        counts[name] += 1
    assert abs(counts["meta"] / n - 0.75) < 0.04


def test_weights_do_not_override_an_open_window(
    make_router: Callable[..., Router], store: Any, clock: Clock
) -> None:
    store.record_inbound(inbound("twilio", clock.now))
    router = make_router(whatsapp_weights="meta=1")
    assert router.choose(USER, "hello") == ("twilio", "window-open")


def test_no_provider_is_a_config_error(store: Any, clock: Clock) -> None:
    router = Router({}, store, make_settings(), clock=clock)
    with pytest.raises(ConfigError, match="configure META_\\* or TWILIO_\\*"):
        router.send(USER, PROMO)


def test_long_text_parts_are_logged_and_priced_one_row_each(
    make_router: Callable[..., Router], store: Any, clock: Clock, twilio: FakeProvider
) -> None:
    twilio.parts = 3
    message = inbound("twilio", clock.now)
    store.record_inbound(message)
    router = make_router()
    receipt = router.send(USER, "long " * 100, inbound=message)
    rows = store.list_log(direction="out", limit=10)
    assert {r.message_id for r in rows} == set(receipt.message_ids)
    assert sorted(r.extra["part"] for r in rows) == [1, 2, 3]
    # Twilio's fee is charged per message actually sent.
    assert router.costs.report("2026-09").line("twilio", "service").known_amount == Decimal("0.015")


def test_window_of_a_messaging_service_sender_counts_any_of_its_numbers(
    store: Any, clock: Clock, meta: FakeProvider
) -> None:
    # With only TWILIO_MESSAGING_SERVICE_SID, Twilio's business_number is the MG... SID.
    service = FakeProvider("twilio", "MG0123456789abcdef0123456789abcdef")
    store.record_inbound(inbound("twilio", clock.now))  # received on +14155238886
    router = Router({"meta": meta, "twilio": service}, store, make_settings(), clock=clock)
    assert router.choose(USER, "hello") == ("twilio", "window-open")
