"""The routing policy as a pure function: each rule checked with plain values — no store, no
clock, no providers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from eki_whatsapp.errors import ConfigError
from eki_whatsapp.providers.base import (
    AuthError,
    InvalidRecipient,
    ProviderDown,
    RateLimited,
    TemplateError,
    Undeliverable,
    WindowClosed,
)
from eki_whatsapp.routing import Choice, Price, Situation, choose
from eki_whatsapp.routing.policy import after_failure, after_late_failure

BOTH = ("meta", "twilio")


def situation(
    *,
    windows: Mapping[str, bool] | None = None,
    down: tuple[str, ...] = (),
    prices: Mapping[str, str | None] | None = None,
    candidates: tuple[str, ...] = BOTH,
    **facts: Any,
) -> Situation:
    """A situation over ``candidates``: windows closed, breakers closed, prices per provider."""
    category = facts.pop("category", "marketing" if facts.get("template") else "service")
    fallback_category = facts.pop("fallback_category", "utility")
    amounts = prices or {}
    return Situation(
        candidates=candidates,
        windows={p: False for p in candidates} | dict(windows or {}),
        available={p: p not in down for p in candidates},
        template=facts.pop("template", False),
        category=category,
        fallback_category=fallback_category,
        prices={
            (p, cat): Price(None if amounts.get(p) is None else Decimal(str(amounts[p])))
            for p in candidates
            for cat in (category, fallback_category)
        },
        **facts,
    )


class NoPrices(dict[Any, Price]):
    """Prices that must not be read."""

    def __missing__(self, key: Any) -> Price:
        raise AssertionError(f"the policy read the price of {key}")


# --- replies -------------------------------------------------------------------------------------
def test_a_reply_goes_out_on_its_inbound_channel_without_reading_prices() -> None:
    s = situation(windows={"meta": True, "twilio": True}, inbound="twilio")
    s = replace(s, prices=NoPrices())
    assert choose(s) == Choice("twilio", "reply-channel", True)


def test_a_reply_whose_channel_breaker_is_open_fails_over_to_an_open_window() -> None:
    s = situation(windows={"meta": True, "twilio": True}, inbound="meta", down=("meta",))
    assert choose(s) == Choice("twilio", "failover:circuit-open", True)


def test_a_reply_only_its_channel_can_carry_stays_there_with_the_breaker_open() -> None:
    s = situation(windows={"meta": True}, inbound="meta", down=("meta",))
    assert choose(s) == Choice("meta", "reply-channel", True)


def test_a_template_reply_with_an_open_breaker_goes_to_another_provider() -> None:
    s = situation(template=True, windows={"meta": True}, inbound="meta", down=("meta",), prices={"twilio": 0})
    assert choose(s) == Choice("twilio", "failover:circuit-open", False)


def test_a_free_form_reply_keeps_a_sick_channel_whose_window_is_open_over_a_template_elsewhere() -> None:
    s = situation(windows={"meta": True}, inbound="meta", down=("meta",), has_fallback=True)
    assert choose(s) == Choice("meta", "failover:circuit-open", True)


# --- business-initiated free-form ----------------------------------------------------------------
def test_free_form_goes_where_the_window_is_open() -> None:
    assert choose(situation(windows={"twilio": True})) == Choice("twilio", "window-open", True)


def test_free_form_with_both_windows_open_takes_the_cheaper() -> None:
    s = situation(windows={"meta": True, "twilio": True}, prices={"meta": "0.01", "twilio": "0.005"})
    assert choose(s) == Choice("twilio", "window-open", True)


def test_equal_prices_go_to_the_policy_order() -> None:
    s = situation(windows={"meta": True, "twilio": True}, prices={"meta": 0, "twilio": 0})
    assert choose(s).provider == "meta"  # type: ignore[union-attr]


def test_free_form_to_closed_windows_asks_for_the_fallback_template() -> None:
    s = situation(prices={"meta": "0.004", "twilio": "0.009"})
    assert choose(s) == Choice("meta", "fallback-template", False, fallback=True, basis="cheapest")


def test_free_form_prefers_a_sick_provider_with_an_open_window_to_none() -> None:
    s = situation(windows={"twilio": True}, down=("twilio",))
    assert choose(s) == Choice("twilio", "window-open", True)


# --- templates -----------------------------------------------------------------------------------
def test_a_template_goes_to_the_cheaper_provider() -> None:
    s = situation(template=True, prices={"meta": "0.025", "twilio": "0.030"})
    assert choose(s) == Choice("meta", "cheapest", False)


def test_a_template_takes_an_open_window_where_it_is_cheaper() -> None:
    s = situation(template=True, windows={"twilio": True}, prices={"meta": "0.008", "twilio": "0.005"})
    assert choose(s) == Choice("twilio", "window-open", True)


def test_an_unknown_price_sorts_after_any_known_one() -> None:
    s = situation(template=True, prices={"meta": None, "twilio": "0.5"})
    assert choose(s) == Choice("twilio", "cheapest", False)


def test_a_template_skips_a_provider_whose_breaker_is_open() -> None:
    s = situation(template=True, down=("meta",), prices={"meta": 0, "twilio": "0.03"})
    assert choose(s) == Choice("twilio", "cheapest", False)


# --- allowance and weights -----------------------------------------------------------------------
def test_a_free_allowance_wins_when_no_window_is_open() -> None:
    # The price stays real (0.025); the allowance can waive it (issue 18: not a zero price).
    s = situation(template=True, allowances={"meta"}, prices={"meta": "0.025", "twilio": "0.01"})
    s = replace(s, prices={**s.prices, ("meta", "marketing"): Price(Decimal("0.025"), free_allowance=True)})
    assert choose(s) == Choice("meta", "free-allowance", False, free_allowance=True)


def test_an_allowance_is_read_for_any_provider_that_has_one() -> None:
    s = situation(
        template=True,
        candidates=("meta", "twilio", "acme"),
        allowances={"acme"},
        prices={"meta": "0.02", "twilio": "0.02", "acme": "0.03"},
    )
    s = replace(s, prices={**s.prices, ("acme", "marketing"): Price(Decimal("0.03"), free_allowance=True)})
    assert choose(s) == Choice("acme", "free-allowance", False, free_allowance=True)


def test_an_allowance_slot_goes_only_to_a_message_that_saves_at_least_its_bar() -> None:
    s = situation(template=True, allowances={"meta"}, prices={"meta": "0.0068", "twilio": "0.0118"})
    cheap = Price(Decimal("0.0068"), free_allowance=True, allowance_bar=Decimal("0.0625"))
    assert choose(replace(s, prices={**s.prices, ("meta", "marketing"): cheap})) == Choice(
        "meta", "cheapest", False
    )
    dear = Price(Decimal("0.0625"), free_allowance=True, allowance_bar=Decimal("0.0625"))
    s = situation(template=True, allowances={"meta"}, prices={"meta": "0.0625", "twilio": "0.0675"})
    chosen = choose(replace(s, prices={**s.prices, ("meta", "marketing"): dear}))
    assert chosen == Choice("meta", "free-allowance", False, free_allowance=True)


def test_an_allowance_never_beats_a_cheaper_open_window_it_would_not_save_on() -> None:
    # A reminder: Twilio's window is open (0.005), Meta's utility rate 0.0068 could be waived,
    # but a slot is worth more than the 0.005 it would save.
    s = situation(template=True, category="utility", windows={"twilio": True}, allowances={"meta"})
    prices = {
        ("meta", "utility"): Price(Decimal("0.0068"), free_allowance=True, allowance_bar=Decimal("0.0625")),
        ("twilio", "utility"): Price(Decimal("0.005")),
    }
    assert choose(replace(s, prices=prices)) == Choice("twilio", "window-open", True)


def test_price_decides_and_weights_only_split_ties() -> None:
    weights = {"meta": 0.0, "twilio": 1.0}
    s = situation(template=True, weights=weights, prices={"meta": "0.025", "twilio": "0.030"})
    assert choose(s) == Choice("meta", "cheapest", False)
    s = situation(template=True, weights=weights, prices={"meta": "0.025", "twilio": "0.025"})
    assert choose(s) == Choice("twilio", "weighted", False)
    # Load balancing asked for explicitly: the weights decide whatever the price.
    s = situation(template=True, weights=weights, balance=True, prices={"meta": "0.025", "twilio": "0.030"})
    assert choose(s) == Choice("twilio", "weighted", False)


# --- reachability ---------------------------------------------------------------------------------
def test_a_template_goes_only_to_a_number_the_user_wrote_to() -> None:
    s = situation(template=True, reachable={"twilio"}, prices={"meta": "0.025", "twilio": "0.030"})
    assert choose(s) == Choice("twilio", "cheapest", False)
    s = situation(template=True, reachable=BOTH, prices={"meta": "0.025", "twilio": "0.030"})
    assert choose(s) == Choice("meta", "cheapest", False)
    s = situation(template=True, prices={"meta": "0.025", "twilio": "0.030"})  # nothing known: any
    assert choose(s) == Choice("meta", "cheapest", False)


def test_another_number_only_as_a_failover_the_settings_allow_and_the_reason_says_so() -> None:
    prices = {"meta": "0.025", "twilio": "0.030"}
    s = situation(
        template=True, reachable={"meta"}, candidates=("twilio",), cause="ProviderDown", prices=prices
    )
    assert choose(s) == Choice("twilio", "failover:ProviderDown:other-number", False)
    assert choose(replace(s, other_number=False)) is None
    s = situation(template=True, reachable={"meta"}, down=("meta",), prices=prices)
    assert choose(s) == Choice("twilio", "failover:circuit-open:other-number", False)
    assert choose(replace(s, other_number=False)) == Choice("meta", "cheapest", False)


def test_weights_decide_by_the_draw_and_skip_zero_weights() -> None:
    weights = {"meta": 0.0, "twilio": 1.0}
    assert choose(situation(template=True, weights=weights, draw=lambda: 0.0)) == Choice(
        "twilio", "weighted", False
    )
    weights = {"meta": 3.0, "twilio": 1.0}
    assert choose(situation(template=True, weights=weights, draw=lambda: 0.5)).provider == "meta"  # type: ignore[union-attr]
    assert choose(situation(template=True, weights=weights, draw=lambda: 0.9)).provider == "twilio"  # type: ignore[union-attr]


def test_weights_never_override_an_open_window() -> None:
    s = situation(windows={"twilio": True}, weights={"meta": 1.0}, draw=lambda: 0.0)
    assert choose(s) == Choice("twilio", "window-open", True)


# --- single provider, explicit provider, failover ------------------------------------------------
def test_a_single_provider_policy_uses_it_with_reason_policy() -> None:
    s = situation(template=True, candidates=("twilio",), policy="twilio")
    assert choose(s) == Choice("twilio", "policy", False)


def test_an_explicit_provider_is_used_and_never_failed_over() -> None:
    assert choose(situation(template=True, explicit="twilio")) == Choice("twilio", "explicit", False)
    assert choose(situation(template=True, explicit="twilio", cause="ProviderDown")) is None


def test_after_a_failure_the_rest_are_tried_with_a_failover_reason() -> None:
    s = situation(template=True, candidates=("twilio",), cause="ProviderDown", prices={"twilio": "0.03"})
    assert choose(s) == Choice("twilio", "failover:ProviderDown", False)
    assert choose(situation(template=True, candidates=(), cause="ProviderDown")) is None


def test_no_provider_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="WHATSAPP_PROVIDER=dual"):
        choose(situation(candidates=()))


def test_a_third_provider_is_routed_like_the_others() -> None:
    s = situation(candidates=("acme",), windows={"acme": True}, inbound="acme")
    assert choose(s) == Choice("acme", "reply-channel", True)
    s = situation(template=True, candidates=("meta", "acme"), prices={"meta": "0.03", "acme": "0.01"})
    assert choose(s) == Choice("acme", "cheapest", False)


# --- what follows a failure ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        ProviderDown("x", provider="meta"),
        RateLimited("x", provider="meta"),
        AuthError("x", provider="meta"),
        Undeliverable("x", provider="meta"),  # Meta 131026: another number may reach the user
    ],
)
def test_errors_another_provider_can_avoid_fail_over(error: Exception) -> None:
    assert after_failure(error, fallback=False, template=False) == "failover"  # type: ignore[arg-type]


def test_a_closed_window_at_send_time_asks_for_the_fallback_once() -> None:
    assert after_failure(WindowClosed("x", provider="meta"), fallback=False, template=False) == "fallback"
    assert after_failure(WindowClosed("x", provider="meta"), fallback=True, template=True) == "stop"
    assert after_failure(InvalidRecipient("x", provider="meta"), fallback=False, template=False) == "stop"


def test_late_failures() -> None:
    late = after_late_failure
    undeliverable = Undeliverable("x", provider="meta", code=131026)
    assert late(undeliverable, kind="template", fallback=False, has_text=True, policy="dual") == "failover"
    assert late(undeliverable, kind="template", fallback=False, has_text=False, policy="dual") == "ignore"
    assert (
        late(WindowClosed("x", provider="meta"), kind="text", fallback=False, has_text=True, policy="dual")
        == "fallback"
    )
    assert (
        late(
            WindowClosed("x", provider="meta"), kind="template", fallback=False, has_text=True, policy="dual"
        )
        == "ignore"
    )
    assert (
        late(WindowClosed("x", provider="meta"), kind="text", fallback=True, has_text=True, policy="dual")
        == "ignore"
    )
    assert (
        late(ProviderDown("x", provider="meta"), kind="text", fallback=False, has_text=True, policy="dual")
        == "failover"
    )
    assert (
        late(ProviderDown("x", provider="meta"), kind="text", fallback=False, has_text=True, policy="meta")
        == "ignore"
    )
    assert (
        late(ProviderDown("x", provider="meta"), kind="image", fallback=False, has_text=False, policy="dual")
        == "ignore"
    )
    assert (
        late(TemplateError("x", provider="meta"), kind="text", fallback=False, has_text=True, policy="dual")
        == "ignore"
    )
