"""A month of a school's WhatsApp traffic through the real Router, against the offline optimum.

The traffic model (issue 18): November 2026, 2,000 students in Mexico, Brazil, Colombia and
Spain. 40% write only to the Meta number, 30% only to the Twilio number, 30% to both. Each
student is *reachable* on the numbers they wrote to (one rule, the router's: the store's inbound
history; everyone wrote before this month), and a message from another number shows up as a new,
unknown chat — an *off-thread* send, allowed only as a failover. Students chat on about half the
days (1-3 messages, each answered by the bot), get a daily utility reminder (a template) and a
weekly marketing template. Each provider has a 2-hour outage (Meta on the 10th, Twilio on the
19th, 12:00-14:00 UTC, when the reminders go out); for its first 10 minutes the provider accepts
and delivers each message but the request times out, after that every send fails at once.

Everything goes through :class:`eki_whatsapp.routing.Router` configured as docs/routing.md
recommends for the seed's scenario ("Meta first, Twilio after": ``WHATSAPP_PROVIDER=dual``, no
weights, no allowance, a fallback template), with in-process fake providers that enforce the
24-hour window themselves and bill what they deliver with the shipped price table (Twilio also
bills its fee on every inbound message). The fakes are the ground truth: cost is what they billed.
As in production (docs/deployment.md, "The outbox"), a send no provider can take is queued and a
timed-out one kept as unknown: the fakes take the router's correlation key and send the
"delivered" status webhook of a timed-out send (``STATUS_DELAY`` later), which the bench logs and
gives to ``router.on_status`` as the webhook pipeline does; the sweeper delivers the outbox every
``WHATSAPP_SWEEP_INTERVAL_SECONDS`` of simulated time, and after the last event the clock runs on
until the outbox is empty. A send the outbox expires or fails is lost.

Reported: lost messages (never delivered), duplicates (delivered twice: a timed-out send that
had gone through, then sent again), off-thread deliveries outside failover, the cost by who
charges it, and the cost of:

(a) Meta only / (b) Twilio only: every outbound message through that provider (a fallback
    template where its window is closed), lost during its outage — a single-number deployment
    that ignores where the students wrote;
(c) the offline optimum: each message, knowing the future, on the cheapest provider that is up
    and where the student is reachable (another number only when none of theirs is up), a reply
    on the number the student wrote to while it is up — the router's own rules, with hindsight.

All three include the same inbound fees. The router's ledger total is printed too: it must
match what the providers billed (an honest ledger).

Target: cost <= 1.01x (c), 0 lost, 0 duplicates, 0 off-thread sends outside failover, and never
above (a) or (b). Deterministic for a seed (costs, not timings: nothing to interleave).

Run: ``.venv/bin/python bench/routing_month.py [--students 2000] [--seed 1] [--rules meta-2026-10]
[--status-delay 90]``
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import logging
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from eki_whatsapp import MemoryStore, Settings
from eki_whatsapp.costs import Costs, PriceBook
from eki_whatsapp.events import InboundMessage, StatusUpdate
from eki_whatsapp.messages import Template, Text
from eki_whatsapp.providers.base import OutcomeUnknown, ProviderDown, ProviderError, SendReceipt, WindowClosed
from eki_whatsapp.routing import Router
from eki_whatsapp.store.base import Lease

MONTH = "2026-11"
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 12, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
WINDOW = timedelta(hours=24)  # what the providers enforce and bill by (no safety margin)
OUTAGES = {
    "meta": (
        datetime(2026, 11, 10, 12, tzinfo=timezone.utc),
        datetime(2026, 11, 10, 14, tzinfo=timezone.utc),
    ),
    "twilio": (
        datetime(2026, 11, 19, 12, tzinfo=timezone.utc),
        datetime(2026, 11, 19, 14, tzinfo=timezone.utc),
    ),
}
TIMING_OUT = timedelta(minutes=10)  # the first minutes of an outage: delivered, but the request times out
#: When the "delivered" status webhook of a timed-out send arrives. Usually some 30 s after a
#: message went out; these are sent during an outage, when webhooks lag too: 90 s, under the
#: default WHATSAPP_AMBIGUOUS_GRACE_SECONDS (120 s). A later status (--status-delay) finds the
#: send resent after the grace: a duplicate, which is what the grace is there to weigh.
STATUS_DELAY = timedelta(seconds=90)
#: After the last event the outbox is run on for at most this long (its TTL is a day).
DRAIN = timedelta(days=1)
NUMBERS = {"meta": "106540352242922", "twilio": "14155238886"}
MARKETS = [("52", 0.30), ("55", 0.30), ("57", 0.20), ("34", 0.20)]  # MX, BR, CO, ES
HABITS = [("meta",), ("twilio",), ("meta", "twilio")]
HABIT_WEIGHTS = [0.40, 0.30, 0.30]
REMINDER = Template("recordatorio_clase", "es", content_sid="HX" + "1" * 32)  # also the fallback template
PROMO = Template("oferta_semanal", "es", content_sid="HX" + "3" * 32)
CATEGORY = {"recordatorio_clase": "utility", "oferta_semanal": "marketing"}
TARGET = 1.01
PROVIDERS = ("meta", "twilio")
_STATUS_SEQ = itertools.count()  # orders statuses due at the same instant


class SimClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Tally:
    """What the fakes delivered, per event: the ground truth."""

    seq: int = -1
    deliveries: dict[int, list[str]] = field(default_factory=dict)  # event seq -> providers
    billed: dict[str, Decimal] = field(default_factory=lambda: {p: Decimal(0) for p in PROVIDERS})
    refused: Counter[str] = field(default_factory=Counter)
    #: Status webhooks the providers will send: (when, n, status), fed to the router in time.
    statuses: list[tuple[datetime, int, StatusUpdate]] = field(default_factory=list)
    #: The provider and message id of the latest delivery (an outbox delivery's log row).
    last: tuple[str, str] | None = None


@dataclass
class FakeProvider:
    """A provider in the process: enforces the 24-hour window, bills what it delivers, and has
    an outage whose first minutes deliver but time out."""

    name: str
    clock: SimClock
    book: PriceBook
    tally: Tally
    windows: dict[str, datetime] = field(default_factory=dict)
    free_used: int = 0
    status_delay: timedelta = STATUS_DELAY
    _ids: Any = field(default_factory=itertools.count)

    @property
    def business_number(self) -> str:
        return NUMBERS[self.name]

    def window_open(self, user: str, now: datetime) -> bool:
        last = self.windows.get(user)
        return last is not None and now - last < WINDOW

    #: Like the real providers: ``send`` takes the router's correlation key, which the status
    #: webhooks of the message echo (Meta's biz_opaque_callback_data, Twilio's StatusCallback).
    correlates = True

    def send(self, to: str, message: Any, correlation: str | None = None) -> SendReceipt:
        now = self.clock()
        start, end = OUTAGES[self.name]
        down = start <= now < end
        if down and now >= start + TIMING_OUT:
            self.tally.refused[f"{self.name}:ProviderDown"] += 1
            raise ProviderDown("service unavailable", provider=self.name, code=131016, http_status=503)
        in_window = self.window_open(to, now)
        if message.kind != "template" and not in_window:
            self.tally.refused[f"{self.name}:WindowClosed"] += 1
            raise WindowClosed("outside the window", provider=self.name, code=63016)
        category = CATEGORY[message.name] if message.kind == "template" else "service"
        quote = self.book.quote(self.name, category, self.book.market_of(to), at=now, in_window=in_window)
        assert quote.amount is not None, quote
        allowance = self.book.allowance(self.name, now)
        if allowance is not None and allowance.covers(category) and quote.amount > 0:
            self.free_used += 1  # the provider's own allowance: first come, first served
            if self.free_used <= allowance.per_month:
                quote = replace(quote, amount=Decimal(0))
        self.tally.billed[self.name] += quote.amount
        self.tally.deliveries.setdefault(self.tally.seq, []).append(self.name)
        message_id = f"{self.name}-{next(self._ids)}"
        self.tally.last = (self.name, message_id)
        if down:  # delivered, but the answer never comes back
            self.tally.refused[f"{self.name}:timeout"] += 1
            # What reconciles it in production: the "delivered" status, echoing the key. (The
            # statuses of answered sends change nothing here: no late failures, no pricing.)
            status = StatusUpdate(
                provider=self.name,  # type: ignore[arg-type]
                message_id=message_id,
                status="delivered",
                timestamp=now + self.status_delay,
                raw={},
                recipient=to,
                business_number=self.business_number,
                correlation=correlation,
            )
            heapq.heappush(self.tally.statuses, (status.timestamp, next(_STATUS_SEQ), status))
            error = OutcomeUnknown(
                "no answer after the request was sent (ReadTimeout)",
                provider=self.name,
                raw={"exception": "ReadTimeout"},
            )
            error.correlation = correlation  # as providers/_common.py does
            raise error
        return SendReceipt(self.name, message_id, "accepted", {}, to=to, kind=message.kind)

    async def send_async(self, to: str, message: Any, correlation: str | None = None) -> SendReceipt:
        return self.send(to, message, correlation)

    def download_media(self, ref: Any) -> bytes:
        raise NotImplementedError

    async def download_media_async(self, ref: Any) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass
class Outboxed:
    """The sends the router kept in its outbox (receipt status ``queued`` or ``unknown``), by
    outbox id: which event each belongs to, and which are still open."""

    seq: dict[str, int] = field(default_factory=dict)  # outbox id -> event seq
    open: set[str] = field(default_factory=set)
    kept: dict[str, str] = field(default_factory=dict)  # outbox id -> the receipt's status

    def keep(self, outbox_id: str, seq: int, status: str) -> None:
        self.seq[outbox_id] = seq
        self.open.add(outbox_id)
        self.kept[outbox_id] = status

    def check(self, outbox_id: str, store: Any, delivered: tuple[str, str] | None, settle: Any) -> None:
        """Settle a send whose outbox state became final: ``sent`` through ``delivered``
        (provider, message id: its final provider and reason come from the log row);
        ``expired`` or ``failed`` is lost (counted from the fakes' deliveries)."""
        item = store.get_send(outbox_id)
        if item is None or item.state in ("queued", "unknown"):
            return
        self.open.discard(outbox_id)
        if item.state == "sent":
            settle(self.seq[outbox_id], *(delivered or (item.provider or "?", "")))

    def states(self, store: Any) -> Counter[str]:
        """``<status when sent> -> <final state>``: how many."""
        return Counter(f"{self.kept[i]}->{store.get_send(i).state}" for i in self.seq)


@dataclass(order=True)
class Event:
    at: datetime
    seq: int
    kind: str = field(compare=False)  # "in", "reply", "reminder", "promo"
    user: str = field(compare=False)
    provider: str | None = field(compare=False, default=None)  # the inbound channel
    reply_to: int | None = field(compare=False, default=None)  # seq of the inbound a reply answers


@dataclass
class Student:
    user: str
    numbers: tuple[str, ...]


def make_students(n: int, rng: random.Random) -> list[Student]:
    students = []
    for i in range(n):
        prefix = rng.choices([p for p, _ in MARKETS], [w for _, w in MARKETS])[0]
        habit = rng.choices(HABITS, HABIT_WEIGHTS)[0]
        students.append(Student(f"{prefix}1{i:08d}", habit))
    return students


def make_events(students: list[Student], rng: random.Random) -> list[Event]:
    seq = itertools.count()
    events: list[Event] = []
    days = (END - START).days
    for s in students:
        for day in range(days):
            base = START + day * DAY
            if rng.random() < 0.5:  # a chat that day: 1-3 messages, each answered
                t = base + timedelta(hours=rng.uniform(8, 22))
                channel = rng.choice(s.numbers)
                for _ in range(rng.randint(1, 3)):
                    inbound = next(seq)
                    events.append(Event(t, inbound, "in", s.user, channel))
                    events.append(
                        Event(t + timedelta(seconds=5), next(seq), "reply", s.user, reply_to=inbound)
                    )
                    t += timedelta(minutes=rng.uniform(1, 20))
            events.append(
                Event(base + timedelta(hours=12, seconds=rng.uniform(0, 3600)), next(seq), "reminder", s.user)
            )
            if (base.weekday()) == 0:  # Mondays
                events.append(
                    Event(
                        base + timedelta(hours=16, seconds=rng.uniform(0, 3600)), next(seq), "promo", s.user
                    )
                )
    events.sort()
    return events


def inbound_message(event: Event) -> InboundMessage:
    assert event.provider is not None
    return InboundMessage(
        provider=event.provider,  # type: ignore[arg-type]
        id=f"in-{event.seq}",
        sender=event.user,
        recipient=NUMBERS[event.provider],
        type="text",
        timestamp=event.at,
        raw={},
        text="hola",
    )


#: Settings of each recipe: the recommendation of docs/routing.md, and the seed's "first 1,000
#: free on Meta, then Twilio" (history, for comparison).
RECIPES: dict[str, dict[str, Any]] = {
    "recommended": {},
    "seed": {"whatsapp_meta_free_allowance": 1000, "whatsapp_weights": "meta=0,twilio=1"},
}


def run_router(
    students: list[Student],
    events: list[Event],
    rules: tuple[str, ...],
    recipe: str = "recommended",
    status_delay: timedelta = STATUS_DELAY,
) -> dict[str, Any]:
    clock = SimClock()
    book = PriceBook.default(rules=rules)
    tally = Tally()
    fakes = {p: FakeProvider(p, clock, book, tally, status_delay=status_delay) for p in PROVIDERS}
    store = MemoryStore()
    # The settings docs/routing.md recommends for the seed's scenario.
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        whatsapp_provider="dual",
        whatsapp_store_url="memory://",
        whatsapp_fallback_template="recordatorio_clase",
        whatsapp_fallback_template_language="es",
        whatsapp_fallback_template_content_sid="HX" + "1" * 32,
        whatsapp_price_rules=",".join(rules),
        **RECIPES[recipe],
    )
    allowance = (
        {"meta": settings.whatsapp_meta_free_allowance} if settings.whatsapp_meta_free_allowance else None
    )
    costs = Costs(store, book, clock=clock, free_allowance=allowance)
    router = Router(dict(fakes), store, settings, clock=clock, costs=costs)
    # Everyone wrote before this month to each number they use: the store knows where each
    # student is reachable (the windows of October are long closed).
    history = random.Random(7)
    for s in students:
        for p in s.numbers:
            at = datetime(2026, 10, 1, tzinfo=timezone.utc) + timedelta(days=history.uniform(0, 25))
            msg = inbound_message(Event(at, -1, "in", s.user, p))
            store.record_inbound(InboundMessage(**{**_fields(msg), "id": f"old-{p}-{s.user}"}))
            fakes[p].windows[s.user] = at
    inbound: dict[int, InboundMessage] = {}
    reasons: Counter[str] = Counter()
    receipts: dict[int, tuple[str, str]] = {}  # seq -> (provider, reason) of the final send
    errors: Counter[str] = Counter()
    inbound_fees = Decimal(0)
    outbox = Outboxed()

    def settle(seq: int, provider: str, message_id: str) -> None:
        row = store.get_message(provider, message_id)
        reason = row.reason if row is not None and row.reason else "?"
        if row is not None and reason.startswith("unknown:"):  # resolved by its status
            reason = str(row.extra.get("choice", reason))  # why that provider was tried
        reasons[reason] += 1
        receipts[seq] = (provider, reason)

    def sweep() -> None:
        """What the sweeper does every WHATSAPP_SWEEP_INTERVAL_SECONDS (bot.flush_outbox), one
        claimed send at a time so each delivery is tallied under its event."""
        lease = Lease("bench", clock() + timedelta(seconds=settings.whatsapp_handler_lease_seconds))
        for item in store.claim_sends(lease, now=clock(), limit=len(outbox.open) or 1):
            assert item.id is not None
            tally.seq, tally.last = outbox.seq[item.id], None
            router.outbox.deliver(item, lease)
            outbox.check(item.id, store, tally.last, settle)

    def status_due() -> None:
        """A provider's status webhook, as the pipeline takes it: logged, then the router's."""
        _, _, status = heapq.heappop(tally.statuses)
        store.record_status(status)
        router.on_status(status)
        for outbox_id in list(outbox.open):  # the unknown send whose key it echoes went out
            item = store.get_send(outbox_id)
            if item is not None and item.correlation == status.correlation:
                outbox.check(outbox_id, store, (status.provider, status.message_id), settle)

    interval = timedelta(seconds=settings.whatsapp_sweep_interval_seconds)

    def advance(to: datetime) -> None:
        """Run the clock to ``to``: statuses as they come, the sweeper while the outbox holds
        something (it finds nothing due otherwise)."""
        while True:
            due = [tally.statuses[0][0]] if tally.statuses else []
            if outbox.open:
                due.append(START + ((clock() - START) // interval + 1) * interval)
            if not due or min(due) > to:
                break
            clock.now = min(due)
            if tally.statuses and tally.statuses[0][0] <= clock.now:
                status_due()
            else:
                sweep()
        clock.now = max(clock.now, to)

    for event in events:
        advance(event.at)
        clock.now = event.at
        tally.seq = event.seq
        if event.kind == "in":
            message = inbound_message(event)
            store.record_inbound(message)  # what the webhook pipeline does
            router.costs.record_inbound(message)
            assert event.provider is not None
            fakes[event.provider].windows[event.user] = event.at
            fee = book.inbound_fee(event.provider, event.at)
            inbound_fees += fee
            tally.billed[event.provider] += fee
            inbound[event.seq] = message
            continue
        try:
            if event.kind == "reply":
                assert event.reply_to is not None
                receipt = router.send(
                    event.user, Text("¡Gracias! Ya lo reviso."), inbound=inbound[event.reply_to]
                )
            elif event.kind == "reminder":
                receipt = router.send(event.user, REMINDER, category="utility")
            else:
                receipt = router.send(event.user, PROMO, category="marketing")
        except ProviderError as exc:
            errors[type(exc).__name__] += 1
            continue
        if receipt.status in ("queued", "unknown"):  # kept in the outbox: it settles later
            outbox.keep(receipt.message_id, event.seq, receipt.status)
            continue
        settle(event.seq, receipt.provider, receipt.message_id)
    # After the last event: the outbox runs on until it is empty (or what is left expires).
    last = clock()
    while (outbox.open or tally.statuses) and clock() < last + DRAIN:
        advance(clock() + timedelta(minutes=1))
    reach = {s.user: set(s.numbers) for s in students}
    lost = duplicates = off_thread = off_thread_failover = 0
    for event in events:
        if event.kind == "in":
            continue
        delivered = tally.deliveries.get(event.seq, [])
        if not delivered:
            lost += 1
            continue
        duplicates += len(delivered) - 1
        final = receipts.get(event.seq)
        for n, provider in enumerate(delivered):
            if provider in reach[event.user]:
                continue
            is_final = final is not None and n == len(delivered) - 1 and provider == final[0]
            if is_final and final is not None and final[1].startswith("failover"):
                off_thread_failover += 1
            else:
                off_thread += 1
    return {
        "outbox": outbox.states(store),
        "report": router.costs.report(MONTH),
        "billed": tally.billed,
        "inbound_fees": inbound_fees,
        "refused": tally.refused,
        "reasons": reasons,
        "errors": errors,
        "lost": lost,
        "duplicates": duplicates,
        "off_thread": off_thread,
        "off_thread_failover": off_thread_failover,
    }


def _fields(message: InboundMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in message.__slots__ if not name.startswith("_")}


def offline(
    students: list[Student], events: list[Event], rules: tuple[str, ...]
) -> dict[str, tuple[Decimal, int]]:
    """(outbound cost, messages lost) of Meta only, Twilio only and the offline optimum, from
    the events and the price table alone."""
    book = PriceBook.default(rules=rules)
    reach = {s.user: s.numbers for s in students}
    last: dict[tuple[str, str], datetime] = {}
    channel: dict[int, str] = {}
    totals = {"meta": Decimal(0), "twilio": Decimal(0), "optimal": Decimal(0)}
    lost = {"meta": 0, "twilio": 0, "optimal": 0}
    for s in students:  # the same October history as the router's store (windows closed by now)
        for p in s.numbers:
            last[(p, s.user)] = datetime(2026, 10, 26, tzinfo=timezone.utc)

    def up(p: str, t: datetime) -> bool:
        start, end = OUTAGES[p]
        return not start <= t < end

    def open_(p: str, user: str, t: datetime) -> bool:
        seen = last.get((p, user))
        return seen is not None and t - seen < WINDOW

    def price(p: str, category: str, user: str, t: datetime) -> Decimal:
        quote = book.quote(p, category, book.market_of(user), at=t, in_window=open_(p, user, t))
        assert quote.amount is not None, quote
        return quote.amount

    def cost(p: str, event: Event) -> Decimal:
        if event.kind == "reply":  # free-form where the window is open, else the fallback template
            return price(p, "service" if open_(p, event.user, event.at) else "utility", event.user, event.at)
        return price(p, "utility" if event.kind == "reminder" else "marketing", event.user, event.at)

    for event in events:
        t, user = event.at, event.user
        if event.kind == "in":
            assert event.provider is not None
            last[(event.provider, user)] = t
            channel[event.seq] = event.provider
            continue
        for p in PROVIDERS:
            if up(p, t):
                totals[p] += cost(p, event)
            else:
                lost[p] += 1
        live = [p for p in PROVIDERS if up(p, t)]
        if event.kind == "reply" and event.reply_to is not None and channel[event.reply_to] in live:
            options = [channel[event.reply_to]]
        else:
            options = [p for p in live if p in reach[user]] or live
        if not options:
            lost["optimal"] += 1
            continue
        totals["optimal"] += min(cost(p, event) for p in options)
    return {k: (totals[k], lost[k]) for k in totals}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rules", default="", help="unverified price rules to apply, e.g. meta-2026-10")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="recommended", help="router settings")
    parser.add_argument(
        "--status-delay",
        type=float,
        default=STATUS_DELAY.total_seconds(),
        help="seconds until a timed-out send's status webhook arrives",
    )
    args = parser.parse_args()
    rules = tuple(r for r in args.rules.split(",") if r)
    logging.getLogger("eki_whatsapp").setLevel(logging.CRITICAL)  # failovers log; the counts say it

    rng = random.Random(args.seed)
    students = make_students(args.students, rng)
    events = make_events(students, rng)
    outbound = sum(1 for e in events if e.kind != "in")
    habits = Counter("+".join(s.numbers) for s in students)
    print(
        f"routing_month: {args.students} students {dict(habits)}, {len(events) - outbound} inbound, "
        f"{outbound} outbound, {MONTH}, outages {', '.join(f'{p} {a:%d %H:%M}-{b:%H:%M}' for p, (a, b) in OUTAGES.items())}"
        + (f", rules {','.join(rules)}" if rules else "")
        + f", recipe {args.recipe}"
    )
    started = time.perf_counter()
    result = run_router(students, events, rules, args.recipe, timedelta(seconds=args.status_delay))
    elapsed = time.perf_counter() - started
    report = result["report"]
    billed: dict[str, Decimal] = result["billed"]
    total = sum(billed.values(), Decimal(0))
    inbound_fees: Decimal = result["inbound_fees"]
    print(
        f"router: {outbound} sends in {elapsed:.1f} s ({outbound / elapsed:,.0f}/s), errors {dict(result['errors'])}"
    )
    print(f"  refused or timed out at the fakes: {dict(result['refused'])}")
    print(f"  reasons: {dict(result['reasons'].most_common())}")
    print(f"  outbox (receipt -> final state): {dict(result['outbox'])}")
    print(
        f"  lost {result['lost']}, duplicates {result['duplicates']}, off-thread {result['off_thread']} "
        f"(+{result['off_thread_failover']} as failover)"
    )
    print(
        f"  billed: meta ${billed['meta']:.4f}, twilio ${billed['twilio']:.4f} (inbound fees ${inbound_fees:.4f})"
    )
    fees = {k: f"{v:.4f}" for k, v in report.fees().items()}
    print(f"  ledger: total ${report.total:.4f} by who charges {fees}, unknown {report.unknown}")

    baselines = offline(students, events, rules)
    optimal = baselines["optimal"][0] + inbound_fees
    for key, label in (
        ("meta", "(a) Meta only"),
        ("twilio", "(b) Twilio only"),
        ("optimal", "(c) offline optimum"),
    ):
        cost, lost = baselines[key]
        cost += inbound_fees
        print(f"  {label:<22} ${cost:>10.4f}  lost {lost:>5}   router/this = {float(total / cost):.4f}x")
    ratio = float(total / optimal)
    honest = abs(report.total - total) <= Decimal("0.01")
    below_single = all(total <= baselines[p][0] + inbound_fees for p in PROVIDERS)
    ok = (
        ratio <= TARGET
        and result["lost"] == 0
        and result["duplicates"] == 0
        and result["off_thread"] == 0
        and below_single
        and honest
        and report.unknown == 0
    )
    if not honest:
        print(f"  the ledger (${report.total:.4f}) does not match what the providers billed (${total:.4f})")
    print(
        f"routing_month: {ratio:.3f}x optimum, {result['lost']} lost, {result['duplicates']} duplicates, "
        f"{result['off_thread']} off-thread (target <= {TARGET}x, 0 lost, 0 duplicates, 0 off-thread, "
        f"<= single-provider) {'OK' if ok else 'BELOW'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
