"""The cost ledger against hand-computed months, under per-message (PMP) and conversation-based
(CBP) pricing, plus status-webhook pricing, unknown costs and price-table loading."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp.costs import Costs, PriceBook, country_of
from eki_whatsapp.errors import ConfigError
from eki_whatsapp.events import InboundMessage, StatusUpdate
from eki_whatsapp.providers import meta_webhook

from .conftest import make_settings

DATA = Path(__file__).parent.parent / "data"
US, BR, IN, DE = "16505551234", "5511987654321", "919876543210", "4915123456789"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class Sender:
    """Records sends in a ledger with sequential message ids."""

    def __init__(self, costs: Costs) -> None:
        self.costs = costs
        self.n = 0

    def __call__(
        self, provider: str, user: str, category: str | None, at: datetime, *, window: bool = False
    ) -> str:
        self.n += 1
        mid = f"{provider}-{self.n}"
        self.costs.record_send(provider, [mid], user, category, business="B", in_window=window, at=at)
        return mid


def test_pmp_month_matches_the_hand_computed_total(store: Any) -> None:
    costs = Costs(store)
    send = Sender(costs)
    t = utc(2025, 9, 3, 10)
    for i in range(3):
        send("meta", US, "marketing", t + timedelta(hours=i))  # 3 x 0.0250
    send("meta", US, "utility", t, window=True)  # free inside the window
    send("meta", US, "utility", t)  # 0.0040
    send("meta", IN, "authentication", t)  # 0.0014
    send("meta", IN, "authentication", t)  # 0.0014
    send("twilio", BR, "utility", t)  # 0.0080 + 0.005 Twilio fee
    send("twilio", US, "service", t, window=True)  # free at Meta, 0.005 Twilio fee
    send("twilio", DE, "marketing", t)  # 0.1365 + 0.005
    send("meta", US, "marketing", utc(2025, 10, 1))  # another month

    report = costs.report("2025-09")
    assert report.by_provider() == {"meta": D("0.0818"), "twilio": D("0.1595")}
    assert report.total == D("0.2413")
    assert report.messages == 10 and report.unknown == 0
    line = report.line("meta", "utility")
    assert (line.messages, line.billable, line.known_amount) == (2, 1, D("0.0040"))
    assert report.line("meta", "marketing").amount == D("0.0750")
    assert report.line("twilio", "service").amount == D("0.005")
    assert costs.report("2025-10").total == D("0.0250")
    text = str(report)
    assert "2025-09" in text and "0.2413" in text


def test_cbp_month_charges_per_conversation(store: Any) -> None:
    costs = Costs(store)
    send = Sender(costs)
    t = utc(2024, 12, 2, 9)
    send("meta", US, "marketing", t)  # opens a marketing conversation: 0.0250
    send("meta", US, "marketing", t + timedelta(hours=2))  # same conversation: 0
    send("meta", US, "utility", t + timedelta(hours=3))  # a utility conversation: 0.0040
    send("meta", US, "marketing", t + timedelta(hours=25))  # the first one expired: 0.0250
    send("meta", US, "service", t + timedelta(hours=26), window=True)  # service free since 2024-11
    send("twilio", BR, "marketing", t)  # 0.0625 + 0.005
    send("twilio", BR, "marketing", t + timedelta(hours=1))  # in conversation: only the fee 0.005

    report = costs.report("2024-12")
    assert report.by_provider() == {"meta": D("0.0540"), "twilio": D("0.0725")}
    assert report.line("meta", "marketing").billable == 2
    assert report.line("meta", "marketing").messages == 3
    entries = store.ledger(month="2024-12")
    assert {e.pricing_model for e in entries} == {"CBP"}
    assert [e.note for e in entries if e.provider == "meta"][:2] == [None, "in-conversation"]


def test_cbp_2023_service_conversations_and_the_free_allowance(store: Any) -> None:
    # 2023: the first 1,000 service conversations a month were free; here an allowance of 1.
    costs = Costs(store, free_allowance={"meta": 1}, allowance_categories=["service"])
    send = Sender(costs)
    t = utc(2023, 9, 5, 8)
    send("meta", US, "service", t, window=True)  # free by the allowance (opens a conversation)
    send("meta", US, "service", t + timedelta(hours=1), window=True)  # in that conversation: 0
    send("meta", "16505550000", "service", t, window=True)  # allowance used up: 0.0088
    send("meta", "16505550000", "marketing", t + timedelta(hours=2))  # own category: 0.0250
    send("meta", "16505550000", "service", t + timedelta(hours=3), window=True)  # any open conv: 0

    report = costs.report("2023-09")
    service = report.line("meta", "service")
    assert (service.messages, service.free, service.billable, service.known_amount) == (4, 1, 1, D("0.0088"))
    assert report.total == D("0.0338")
    assert costs.allowance_left("meta", "2023-09") == 0
    assert costs.allowance_left("meta", "2023-10") == 1


def test_unknown_market_category_or_date_is_an_explicit_unknown_cost(store: Any) -> None:
    costs = Costs(store)
    send = Sender(costs)
    t = utc(2025, 9, 1)
    send("meta", "99912345678", "marketing", t)  # no calling code we know
    send("meta", "33612345678", "marketing", t)  # France: not in the shipped table
    send("meta", US, None, t)  # a template sent without a category
    send("meta", US, "marketing", utc(2020, 1, 1))  # before the first table
    send("meta", US, "marketing", t)  # 0.0250

    notes = [e.note for e in store.ledger()]
    assert "unknown market" in notes and "unknown category" in notes
    assert "no meta rate for market 'france'" not in notes  # France has no market mapping ...
    assert notes.count("unknown market") == 2  # ... so it is an unknown market too
    assert any(n and n.startswith("no meta price table") for n in notes)
    assert all(e.amount is None for e in store.ledger() if e.note and "unknown" in e.note)

    report = costs.report("2025-09")
    marketing = report.line("meta", "marketing")
    assert marketing.unknown == 2 and marketing.amount is None and marketing.known_amount == D("0.0250")
    assert report.line("meta", "unknown").unknown == 1
    assert report.unknown == 3
    assert "unknown cost of 3 message(s)" in str(report)


def test_default_market_prices_users_of_unknown_countries(store: Any) -> None:
    costs = Costs(store, default_market="north_america")
    assert costs.quote("meta", "99912345678", "marketing", at=utc(2025, 9, 1)).amount == D("0.0250")


def status_from_wire(**changes: Any) -> StatusUpdate:
    body = json.loads((DATA / "meta_status_3_6.json").read_text())
    body["entry"][0]["changes"][0]["value"]["statuses"][0].update(changes)
    (status,) = meta_webhook.parse_body(body)
    assert isinstance(status, StatusUpdate)
    return status


def test_status_pricing_wins_over_the_estimate_and_first_value_is_kept(store: Any) -> None:
    costs = Costs(store)
    status = status_from_wire()  # docs/wire.md 3.6: PMP utility, type regular, to a US user
    sent_at = utc(2025, 9, 10, 12)
    # Estimated free (we believed the window open), but Meta says it was charged.
    costs.record_send("meta", [status.message_id], US, "utility", in_window=True, at=sent_at)
    assert costs.report("2025-09").total == 0
    entry = costs.record_status(status, category="utility", sent_at=sent_at)
    assert entry is not None and entry.amount == D("0.0040") and entry.pricing_model == "PMP"
    # A later status of the same message with other pricing is ignored (first value wins).
    again = status_from_wire(
        status="read",
        pricing={"pricing_model": "PMP", "category": "utility", "type": "free_customer_service"},
    )
    assert costs.record_status(again, sent_at=sent_at) is None
    report = costs.report("2025-09")
    assert report.total == D("0.0040") and report.line("meta", "utility").billable == 1


def test_free_status_types_and_failures_cost_nothing(store: Any) -> None:
    costs = Costs(store)
    sent_at = utc(2025, 9, 10)
    free = status_from_wire(
        id="wamid.free", pricing={"pricing_model": "PMP", "category": "marketing", "type": "free_entry_point"}
    )
    costs.record_send("meta", ["wamid.free"], US, "marketing", at=sent_at)
    costs.record_status(free, sent_at=sent_at)
    failed = status_from_wire(
        id="wamid.failed", status="failed", errors=[{"code": 131026, "title": "Undeliverable"}]
    )
    failed = StatusUpdate(**{**{f: getattr(failed, f) for f in failed.__slots__}, "pricing": None})
    costs.record_send("meta", ["wamid.failed"], US, "marketing", at=sent_at)
    costs.record_status(failed, sent_at=sent_at)
    line = costs.report("2025-09").line("meta", "marketing")
    assert (line.messages, line.failed, line.known_amount) == (1, 1, D("0"))


def test_price_table_from_settings_replaces_the_default(store: Any, tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "currency": "EUR",
                "markets": {"DE": "de"},
                "meta": [
                    {"effective": "2025-01-01", "model": "PMP", "rates": {"de": {"marketing": "0.10"}}},
                    {"effective": "2026-01-01", "model": "PMP", "rates": {"de": {"marketing": "0.12"}}},
                ],
            }
        )
    )
    costs = Costs.from_settings(store, make_settings(whatsapp_price_table=str(path)))
    assert costs.quote("meta", DE, "marketing", at=utc(2025, 6, 1)).amount == D("0.10")
    quote = costs.quote("meta", DE, "marketing", at=utc(2026, 6, 1))
    assert (quote.amount, quote.currency) == (D("0.12"), "EUR")
    assert costs.quote("twilio", DE, "marketing", at=utc(2026, 6, 1)).amount is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ('{"meta": [{"effective": "2025-07-01", "rates": {"x": {"marketing": "-1"}}}]}', "negative"),
        ('{"meta": [{"effective": "July", "rates": {}}]}', "'effective' must be a date"),
    ],
)
def test_bad_price_tables_fail_with_a_clear_message(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        PriceBook.load(path)


def test_shipped_table_is_dated_sourced_and_complete() -> None:
    book = PriceBook.default()
    assert "NOT authoritative" in book.about and "Compiled 2026-12-07" in book.about
    meta = book.tables["meta"]
    assert [str(t.effective) for t in meta] == ["2023-06-01", "2024-11-01", "2025-07-01", "2026-01-01"]
    assert [t.model for t in meta] == ["CBP", "CBP", "PMP", "PMP"]
    for table in [*meta, *book.tables["twilio"]]:
        for market, rates in table.rates.items():
            assert set(rates) == {"marketing", "utility", "authentication", "service"}, market
            for category in rates:
                # Every amount names a source with a URL (or a reference) and a date.
                source = book.source_of(table.provider, table.effective, market, category)
                assert source is not None, (table.effective, market, category)
                assert (source.url or source.ref) and source.date, source
    assert set(book.markets.values()) == set(meta[-1].rates)
    twilio = book.table("twilio", utc(2025, 9, 1))
    assert twilio is not None and twilio.includes == "meta" and twilio.fee_per_message == D("0.005")
    assert twilio.fee_per_inbound == D("0.005")
    assert book.sources[twilio.source].url == "https://www.twilio.com/whatsapp/pricing"


def test_2026_prices_brazil_north_america_colombia_and_authentication_at_the_utility_rate() -> None:
    book = PriceBook.default()

    def rate(market: str, category: str, day: datetime) -> D | None:
        return book.quote("meta", category, market, at=day, in_window=False).amount

    before, after = utc(2025, 12, 31), utc(2026, 1, 1)
    assert (rate("brazil", "utility", before), rate("brazil", "authentication", before)) == (
        D("0.0080"),
        D("0.0315"),
    )
    assert (rate("brazil", "utility", after), rate("brazil", "authentication", after)) == (D("0.0068"),) * 2
    assert (rate("north_america", "utility", before), rate("north_america", "authentication", before)) == (
        D("0.0040"),
        D("0.0135"),
    )
    assert (
        rate("north_america", "utility", after)
        == rate("north_america", "authentication", after)
        == D("0.0034")
    )
    assert rate("colombia", "authentication", after) == D("0.0008")
    for market in ("mexico", "colombia", "spain"):  # PMP: authentication at the utility rate
        assert rate(market, "authentication", utc(2025, 8, 1)) == rate(market, "utility", utc(2025, 8, 1))
    source = book.source_of("meta", after, "brazil", "utility")
    assert source is not None and source.url is not None and "talkall" in source.url and not source.verified


def test_the_2026_10_rule_is_off_until_switched_on(store: Any) -> None:
    day = utc(2026, 11, 3)
    off = PriceBook.default()
    assert [t.rule for t in off.off] == ["meta-2026-10"] and not off.off[0].verified
    assert off.quote("meta", "service", "brazil", at=day, in_window=True).amount == 0
    assert off.quote("meta", "utility", "brazil", at=day, in_window=True).amount == 0
    on = PriceBook.default(rules=["meta-2026-10"])
    assert on.quote("meta", "service", "brazil", at=day, in_window=True).amount == D("0.0068")
    assert on.quote("meta", "utility", "brazil", at=day, in_window=True).amount == D("0.0068")
    assert on.quote("meta", "service", "brazil", at=utc(2026, 9, 30), in_window=True).amount == 0
    costs = Costs.from_settings(store, make_settings(whatsapp_price_rules="meta-2026-10"))
    allowance = costs.allowance("meta", day)
    assert allowance is not None and allowance.per_month == 1000 and allowance.covers("service")
    with pytest.raises(ConfigError, match="WHATSAPP_PRICE_RULES names meta-2027"):
        PriceBook.default(rules=["meta-2027"])


def test_twilio_inbound_fee_outbound_fee_and_meta_rates_are_reported_apart(store: Any) -> None:
    costs = Costs(store)
    t = utc(2026, 11, 3, 9)
    for n, provider in enumerate(["twilio", "twilio", "meta"]):
        message = InboundMessage(
            provider=provider,  # type: ignore[arg-type]
            id=f"in-{n}",
            sender=BR,
            recipient="B",
            type="text",
            timestamp=t,
            raw={},
            text="oi",
        )
        costs.record_inbound(message)
        costs.record_inbound(message)  # a webhook retry is not charged twice
    send = Sender(costs)
    send("twilio", BR, "utility", t)  # Meta 0.0068 passed through + Twilio 0.005
    send("twilio", BR, "service", t, window=True)  # Twilio 0.005
    send("meta", BR, "marketing", t)  # Meta 0.0625
    report = costs.report("2026-11")
    assert report.line("twilio", "inbound").known_amount == D("0.010")
    assert report.line("twilio", "inbound").messages == 2 and report.messages == 3
    assert report.fees() == {
        "meta": D("0.0693"),
        "twilio": D("0.010"),
        "inbound": D("0.010"),
        "allowance": D("0"),
    }
    assert sum(report.fees().values()) == report.total == D("0.0893")
    assert "inbound" in str(report)


def test_the_allowance_is_a_discount_line_and_a_failed_message_gives_its_slot_back(store: Any) -> None:
    costs = Costs(store, free_allowance={"meta": 2})
    t = utc(2026, 11, 3, 9)
    costs.record_send("meta", ["m1"], BR, "marketing", at=t)
    costs.record_send("meta", ["m2"], BR, "marketing", at=t)
    assert costs.allowance_left("meta", "2026-11") == 0
    sends = [e for e in store.ledger(month="2026-11") if e.source == "send"]
    assert {e.amount for e in sends} == {D("0.0625")}  # the real price, not a zero
    line = costs.report("2026-11").line("meta", "marketing")
    assert (line.free, line.discount, line.gross, line.known_amount) == (2, D("0.1250"), D("0.1250"), 0)
    assert "allowance" in str(costs.report("2026-11"))
    failed = status_from_wire(id="m1", status="failed", errors=[{"code": 131026, "title": "Undeliverable"}])
    costs.record_status(failed, sent_at=t)
    costs.record_status(failed, sent_at=t)  # a retried webhook gives back once
    assert costs.allowance_left("meta", "2026-11") == 1
    line = costs.report("2026-11").line("meta", "marketing")
    assert (line.messages, line.failed, line.free, line.discount) == (1, 1, 1, D("0.0625"))
    costs.record_send("meta", ["m3"], BR, "marketing", at=t, allowance=False)  # the router kept the slot
    assert costs.allowance_left("meta", "2026-11") == 1


def test_a_timed_out_send_is_priced_because_it_may_have_been_delivered(store: Any) -> None:
    costs = Costs(store, free_allowance={"meta": 5})
    entry = costs.record_timeout("twilio", BR, "utility", at=utc(2026, 11, 3))
    assert entry is not None and entry.amount == D("0.0118") and entry.note == "timed-out"
    line = costs.report("2026-11").line("twilio", "utility")
    assert (line.messages, line.timed_out, line.known_amount) == (1, 1, D("0.0118"))


def test_allowance_slots_go_where_they_save_most() -> None:
    from eki_whatsapp.store.memory import MemoryStore

    costs = Costs(MemoryStore(), free_allowance={"meta": 100})
    early = utc(2026, 11, 1, 6)
    # Ahead of pace (slots would expire unused): any saving takes one.
    assert costs.allowance_bar("meta", BR, "utility", early) == 0
    for n in range(10):
        costs.record_send("meta", [f"m{n}"], BR, "marketing", at=early)
    # 90 left on day 1 while an even pace keeps ~99: only the dearest messages (Brazil marketing).
    assert costs.allowance_bar("meta", BR, "utility", early) == D("0.0625")
    # Late in the month 90 left is ahead of the pace again.
    assert costs.allowance_bar("meta", BR, "utility", utc(2026, 11, 20)) == 0
    limited = Costs(MemoryStore(), free_allowance={"meta": 1}, allowance_categories=["service"])
    assert limited.allowance_bar("meta", BR, "marketing", early) is None


@pytest.mark.parametrize(
    ("user", "country"),
    [
        (US, "US"),
        (BR, "BR"),
        (IN, "IN"),
        ("2348012345678", "NG"),
        ("US.13491208655302741918", "US"),
        ("abc", None),
        ("", None),
    ],
)
def test_country_of_a_user(user: str, country: str | None) -> None:
    assert country_of(user) == country


def test_a_message_priced_by_sent_then_failed_is_not_charged(store: Any) -> None:
    costs = Costs(store)
    sent_at = utc(2025, 9, 10)
    costs.record_send("meta", ["wamid.x"], US, "marketing", at=sent_at)
    costs.record_status(
        status_from_wire(
            id="wamid.x",
            status="sent",
            pricing={"pricing_model": "PMP", "category": "marketing", "type": "regular"},
        ),
        sent_at=sent_at,
    )
    assert costs.report("2025-09").total == D("0.0250")
    failed = status_from_wire(
        id="wamid.x", status="failed", errors=[{"code": 131026, "title": "Undeliverable"}]
    )
    assert costs.record_status(failed, sent_at=sent_at) is not None
    line = costs.report("2025-09").line("meta", "marketing")
    assert (line.messages, line.failed, line.known_amount) == (0, 1, D("0"))
