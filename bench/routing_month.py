"""A month of WhatsApp traffic through the real Router, against three baselines.

Simulates September 2026 (Meta per-message pricing, the shipped price table) for 5,000 users:
user-initiated chats answered by the bot, business-initiated templates (marketing, utility,
authentication) and free-form notifications, with a 4-hour Meta outage (every send raises
``ProviderDown``) in the middle of the month. Every message goes through
:class:`eki_whatsapp.routing.Router` (policy ``dual``, fallback template configured) with
in-process fake providers that enforce the 24-hour window on their own — a free-form message to a
closed window raises ``WindowClosed`` — so a routing mistake shows up as a lost message.

Printed: delivered / failed counts, cost per provider, and the total compared with
(a) Meta only, (b) Twilio only, and (c) the cheapest possible assignment computed offline from
the same events: each message on the cheapest provider that is up at that moment, a free-form
message as free-form wherever a window is open (the fallback template only when none is).

(a) is dearer than the router although Meta has no per-message fee: users who wrote to the Twilio
number have no window on Meta, so every reply to them needs the fallback template there; and it
loses the messages sent during the outage.

Target: no message lost, and total cost within 1% of (c). The store is in memory by default;
``--store sqlite`` runs the same month on the SQLite store (same decisions, slower).

Run: ``.venv/bin/python bench/routing_month.py [--users 5000] [--seed 1] [--store sqlite]``
"""

from __future__ import annotations

import argparse
import itertools
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from eki_whatsapp import MemoryStore, Settings, SQLiteStore
from eki_whatsapp.costs import PriceBook
from eki_whatsapp.events import InboundMessage
from eki_whatsapp.messages import Template, Text
from eki_whatsapp.providers.base import ProviderDown, ProviderError, SendReceipt, WindowClosed
from eki_whatsapp.routing import Router

MONTH_START = datetime(2026, 9, 1, tzinfo=timezone.utc)
MONTH_END = datetime(2026, 10, 1, tzinfo=timezone.utc)
OUTAGE = (datetime(2026, 9, 15, 10, tzinfo=timezone.utc), datetime(2026, 9, 15, 14, tzinfo=timezone.utc))
WINDOW = timedelta(hours=24) - timedelta(seconds=60)  # the router's default safety margin
META_ID, TWILIO_NUMBER = "106540352242922", "14155238886"
MARKETS = [("1650", 0.40), ("5511", 0.25), ("9198", 0.20), ("5255", 0.10), ("4915", 0.05)]
PROMO = Template("weekly_offer", "en_US", content_sid="HX" + "1" * 32)
TARGET = 1.01


class SimClock:
    def __init__(self) -> None:
        self.now = MONTH_START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeProvider:
    """A provider in the same process: enforces the window, fails during its outage."""

    name: str
    number: str
    clock: SimClock
    outage: tuple[datetime, datetime] | None = None
    windows: dict[str, datetime] = field(default_factory=dict)
    delivered: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    _ids: Any = field(default_factory=itertools.count)

    @property
    def business_number(self) -> str:
        return self.number

    def send(self, to: str, message: Any) -> SendReceipt:
        now = self.clock()
        if self.outage and self.outage[0] <= now < self.outage[1]:
            self.refused["ProviderDown"] += 1
            raise ProviderDown("service unavailable", provider=self.name, code=131016, http_status=503)
        last = self.windows.get(to)
        if message.kind != "template" and (last is None or now - last >= timedelta(hours=24)):
            self.refused["WindowClosed"] += 1
            raise WindowClosed("outside the window", provider=self.name, code=63016)
        self.delivered += 1
        return SendReceipt(
            self.name, f"{self.name}-{next(self._ids)}", "accepted", {}, to=to, kind=message.kind
        )  # type: ignore[arg-type]

    async def send_async(self, to: str, message: Any) -> SendReceipt:
        return self.send(to, message)

    def download_media(self, ref: Any) -> bytes:
        raise NotImplementedError

    async def download_media_async(self, ref: Any) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass(order=True)
class Event:
    at: datetime
    seq: int
    kind: str = field(compare=False)  # "in", "reply", "notify", "template"
    user: str = field(compare=False)
    provider: str | None = field(compare=False, default=None)  # inbound channel
    category: str | None = field(compare=False, default=None)
    inbound: InboundMessage | None = field(compare=False, default=None)


def make_events(users: int, rng: random.Random) -> list[Event]:
    seq = itertools.count()
    events: list[Event] = []
    span = (MONTH_END - MONTH_START).total_seconds()

    def at(offset: float) -> datetime:
        return MONTH_START + timedelta(seconds=offset)

    for u in range(users):
        prefix = rng.choices([p for p, _ in MARKETS], [w for _, w in MARKETS])[0]
        user = f"{prefix}{u:08d}"
        habit = rng.random()  # 60% write to the Meta number, 30% to Twilio, 10% to both
        for _ in range(rng.randint(0, 8)):  # chats this month
            channel = "meta" if habit < 0.6 else "twilio" if habit < 0.9 else rng.choice(["meta", "twilio"])
            start = rng.uniform(0, span - 3600)
            for turn in range(rng.randint(1, 3)):
                t = start + turn * rng.uniform(20, 600)
                events.append(Event(at(t), next(seq), "in", user, channel))
                events.append(Event(at(t + 5), next(seq), "reply", user))
        for _ in range(rng.randint(1, 5)):  # business-initiated templates
            category = rng.choices(["marketing", "utility", "authentication"], [0.5, 0.4, 0.1])[0]
            events.append(Event(at(rng.uniform(0, span)), next(seq), "template", user, category=category))
        if rng.random() < 0.3:  # a free-form notification ("your order is ready")
            events.append(Event(at(rng.uniform(0, span)), next(seq), "notify", user))
    events.sort()
    return events


def run_router(events: list[Event], store: Any) -> dict[str, Any]:
    clock = SimClock()
    meta = FakeProvider("meta", META_ID, clock, outage=OUTAGE)
    twilio = FakeProvider("twilio", TWILIO_NUMBER, clock)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        whatsapp_provider="dual",
        whatsapp_store_url="memory://",
        whatsapp_fallback_template="please_reply",
        whatsapp_fallback_template_content_sid="HX" + "2" * 32,
    )
    router = Router({"meta": meta, "twilio": twilio}, store, settings, clock=clock)
    fakes = {"meta": meta, "twilio": twilio}
    last_inbound: dict[str, InboundMessage] = {}
    delivered = failed = 0
    errors: Counter[str] = Counter()
    for event in events:
        clock.now = event.at
        if event.kind == "in":
            assert event.provider is not None
            message = InboundMessage(
                provider=event.provider,  # type: ignore[arg-type]
                id=f"in-{event.seq}",
                sender=event.user,
                recipient=fakes[event.provider].number,
                type="text",
                timestamp=event.at,
                raw={},
                text="hello",
            )
            store.record_inbound(message)  # what the webhook pipeline does
            fakes[event.provider].windows[event.user] = event.at
            last_inbound[event.user] = message
            continue
        try:
            if event.kind == "reply":
                router.send(event.user, Text("Thanks, on it!"), inbound=last_inbound[event.user])
            elif event.kind == "notify":
                router.send(event.user, Text("Your order is ready"))
            else:
                router.send(event.user, PROMO, category=event.category)
            delivered += 1
        except ProviderError as exc:
            failed += 1
            errors[type(exc).__name__] += 1
    report = router.costs.report("2026-09")
    reasons = Counter(
        row.reason for row in store.list_log(direction="out", limit=10**7) if row.status != "failed"
    )
    return {
        "delivered": delivered,
        "failed": failed,
        "errors": errors,
        "report": report,
        "reasons": reasons,
        "refused": meta.refused + twilio.refused,
    }


def offline_costs(events: list[Event]) -> dict[str, tuple[Decimal, int]]:
    """(total cost, messages that cannot be delivered) of Meta-only, Twilio-only and the cheapest
    assignment, computed from the events and the price table alone."""
    book = PriceBook.default()
    windows: dict[tuple[str, str], datetime] = {}
    totals = {"meta": Decimal(0), "twilio": Decimal(0), "optimal": Decimal(0)}
    lost = {"meta": 0, "twilio": 0, "optimal": 0}

    def up(provider: str, t: datetime) -> bool:
        return not (provider == "meta" and OUTAGE[0] <= t < OUTAGE[1])

    def price(provider: str, category: str, user: str, t: datetime, in_window: bool) -> Decimal:
        quote = book.quote(provider, category, book.market_of(user), at=t, in_window=in_window)
        assert quote.amount is not None, quote
        return quote.amount

    for event in events:
        t, user = event.at, event.user
        if event.kind == "in":
            assert event.provider is not None
            windows[(event.provider, user)] = t
            continue
        options: dict[str, Decimal] = {}
        free_form: dict[str, Decimal] = {}
        for p in ("meta", "twilio"):
            last = windows.get((p, user))
            open_ = last is not None and t - last < WINDOW
            if event.kind == "template":
                assert event.category is not None
                options[p] = price(p, event.category, user, t, open_)
            elif open_:
                options[p] = free_form[p] = price(p, "service", user, t, True)
            else:
                options[p] = price(p, "utility", user, t, False)  # the fallback template
        for p in ("meta", "twilio"):
            if up(p, t):
                totals[p] += options[p]
            else:
                lost[p] += 1
        available = [p for p in ("meta", "twilio") if up(p, t)]
        as_free_form = [p for p in available if p in free_form]
        candidates = as_free_form or available
        totals["optimal"] += min(options[p] for p in candidates)
    return {k: (totals[k], lost[k]) for k in totals}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    args = parser.parse_args()
    # Each failover logs a warning; the counts below say the same in one line.
    logging.getLogger("eki_whatsapp").setLevel(logging.ERROR)

    events = make_events(args.users, random.Random(args.seed))
    outbound = sum(1 for e in events if e.kind != "in")
    print(f"routing_month: {args.users} users, {len(events) - outbound} inbound, {outbound} outbound, "
          f"Meta down {OUTAGE[0]:%Y-%m-%d %H:%M}-{OUTAGE[1]:%H:%M} UTC")  # fmt: skip

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore() if args.store == "memory" else SQLiteStore(Path(tmp) / "bench.sqlite3")
        result = run_router(events, store)
        store.close()
    elapsed = time.perf_counter() - started
    report = result["report"]
    by_provider = report.by_provider()
    total = report.total
    print(f"router: delivered {result['delivered']}, failed {result['failed']} {dict(result['errors'])} "
          f"in {elapsed:.1f} s ({outbound / elapsed:,.0f} sends/s)")  # fmt: skip
    print(f"  refused by the fakes (then routed elsewhere): {dict(result['refused'])}")
    print(f"  reasons: {dict(result['reasons'].most_common())}")
    for provider in ("meta", "twilio"):
        sent = sum(line.messages for line in report.lines if line.provider == provider)
        print(f"  {provider:<7} {sent:>7} messages  ${by_provider.get(provider, Decimal(0)):>10.4f}")
    print(f"  {'total':<7} {report.messages:>7} messages  ${total:>10.4f}  (unknown cost: {report.unknown})")

    baselines = offline_costs(events)
    optimal, _ = baselines["optimal"]
    for key, label in (
        ("meta", "(a) Meta only"),
        ("twilio", "(b) Twilio only"),
        ("optimal", "(c) cheapest offline"),
    ):
        cost, lost = baselines[key]
        ratio = float(total / cost) if cost else float("inf")
        print(f"  {label:<22} ${cost:>10.4f}  lost {lost:>5}   router/this = {ratio:.4f}x")

    ratio = float(total / optimal) if optimal else float("inf")
    lost = result["failed"]
    ok = lost == 0 and ratio <= TARGET and report.unknown == 0
    print(
        f"routing_month: cost {ratio:.3f}x optimal, {lost} lost (target <= {TARGET}x, 0 lost) {'OK' if ok else 'BELOW'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
