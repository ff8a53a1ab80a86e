"""The outbox end to end: a served bot, the real providers, the local fake Graph and Twilio APIs.

Issue 12, "Nothing acknowledged is lost": replies while both providers are down are queued and
each delivered once when they are back; a provider that accepts a message but answers after the
read timeout produces no duplicate, and the rows end as the statuses say; a reply whose window
closes while it waits goes out as the fallback template, or ends ``expired`` with the hook called.
Time moves by the router's clock and the outbox is flushed by hand: nothing sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from eki_whatsapp import Bot, Settings, SQLiteStore
from eki_whatsapp.messages import Template
from eki_whatsapp.providers import ProviderDown, RetryPolicy
from eki_whatsapp.providers.meta import MetaCloud
from eki_whatsapp.providers.twilio import Twilio
from eki_whatsapp.routing import Router
from eki_whatsapp.routing.outbox import Undelivered
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI, meta_text, serve_bot, twilio_text

APP_SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
META_USERS = [f"52155123400{n:02d}" for n in range(5)]
TWILIO_USERS = [f"+55119876500{n:02d}" for n in range(5)]


class Clock:
    """The router's "now": real time plus what the test advanced."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def wait_until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for something a fake server does on its own thread (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Served:
    """A bot on a SQLite file behind a local webhook, both fakes posting statuses to it."""

    def __init__(self, tmp_path: Path, graph: FakeGraphAPI, twilio: FakeTwilioAPI, **settings: Any) -> None:
        self.graph, self.twilio, self.clock = graph, twilio, Clock()
        timeout: Any = settings.pop("timeout", None)
        fields: dict[str, Any] = {
            "whatsapp_provider": "dual",
            "meta_app_secret": APP_SECRET,
            "twilio_auth_token": TWILIO_TOKEN,
            "whatsapp_sweep_interval_seconds": 0,
            **graph.settings_fields(),
            **twilio.settings_fields(),
            **settings,
        }
        self.settings = Settings(_env_file=None, **fields)
        self.store = SQLiteStore(tmp_path / "bot.sqlite3")
        self.bot = Bot(self.settings, store=self.store, providers={}, inline=True)
        self.server = serve_bot(self.bot)
        graph.webhook_url = twilio.webhook_url = self.server.url
        never = RetryPolicy.none()
        self.bot.providers["meta"] = MetaCloud(
            graph.token, graph.phone_number_id, base_url=graph.base_url, retry=never, timeout=timeout
        )
        self.bot.providers["twilio"] = Twilio(
            twilio.account_sid,
            twilio.auth_token,
            from_=twilio.number,
            base_url=twilio.base_url,
            retry=never,
            timeout=timeout,
            status_callback=self.server.url,
        )
        for provider in self.bot.providers.values():
            provider.attach_store(self.store)  # type: ignore[attr-defined]
        self.bot.router = Router(
            self.bot.providers, self.store, self.settings, optouts=self.bot.optouts, clock=self.clock
        )
        self.receipts: list[Any] = []
        self.gone: list[Undelivered] = []
        self.bot.on_undeliverable(self.gone.append)

        @self.bot.on_message
        def echo(message: Any, ctx: Any) -> None:
            self.receipts.append(ctx.reply(f"eco: {message.text}"))

    def write(self, provider: str, user: str, text: str) -> None:
        if provider == "meta":
            response = meta_text(text, sender=user).post(self.server.url, secret=APP_SECRET)
        else:
            response = twilio_text(text, sender=user).post(self.server.url, secret=TWILIO_TOKEN)
        assert response.status_code == 200

    def statuses(self) -> None:
        """Every status webhook the fakes owe, posted and handled."""
        assert self.graph.flush() and self.twilio.flush()
        assert self.bot.drain()

    def close(self) -> None:
        self.server.close()
        self.bot.close()


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGraphAPI, FakeTwilioAPI]]:
    graph = FakeGraphAPI(app_secret=APP_SECRET)
    twilio = FakeTwilioAPI(auth_token=TWILIO_TOKEN)
    yield graph, twilio
    graph.close()
    twilio.close()


@pytest.fixture
def served(tmp_path: Path, fakes: tuple[FakeGraphAPI, FakeTwilioAPI]) -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def make(**settings: Any) -> Served:
        made.append(Served(tmp_path, *fakes, **settings))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_both_providers_down_then_back_loses_nothing_and_sends_each_once(
    served: Callable[..., Served],
) -> None:
    s = served(whatsapp_outbox_backoff_seconds=1)
    with s.graph.outage("refuse"), s.twilio.outage("refuse"):
        for user in META_USERS:
            s.write("meta", user, f"hola {user}")
        for user in TWILIO_USERS:
            s.write("twilio", user, f"oi {user}")
        # Every reply was accepted into the outbox; once a provider's breaker opened (3
        # failures), its replies were queued at once, without a request.
        assert [r.status for r in s.receipts] == ["queued"] * 10
        assert [r.attempts for r in s.receipts[3:5]] == [0, 0]
        assert [r.attempts for r in s.receipts[8:10]] == [0, 0]
        s.clock.advance(seconds=30)
        assert s.bot.flush_outbox() == 10  # still down, breakers open: all wait again
        assert s.graph.sent == [] and s.twilio.sent == []
        pending = s.store.pending_sends()
        assert len(pending) == 10 and all(i.state == "queued" for i in pending)
        assert all("circuit breaker is open" in (i.last_error or "") for i in pending)
    s.clock.advance(minutes=2)  # the breakers' cool-down and the backoff have passed
    assert s.bot.flush_outbox() == 10
    s.statuses()
    assert sorted(m.text for m in s.graph.sent) == sorted(f"eco: hola {u}" for u in META_USERS)
    assert sorted(m.text for m in s.twilio.sent) == sorted(f"eco: oi {u}" for u in TWILIO_USERS)
    assert s.store.pending_sends() == [] and s.bot.flush_outbox() == 0
    for provider, fake in (("meta", s.graph), ("twilio", s.twilio)):
        for sent in fake.sent:
            row = s.store.get_message(provider, sent.id)
            assert row is not None and row.status == "read" and str(row.extra["outbox"]).startswith("o")
    statuses = [r.status for r in s.store.list_log(direction="out")]
    # The queued rows became the sent messages' rows; the 6 attempts made before the breakers
    # opened are logged as the failures they were.
    assert sorted(statuses) == ["failed"] * 6 + ["read"] * 10


def test_a_slow_provider_that_accepts_after_the_timeout_sends_no_duplicate(
    served: Callable[..., Served],
) -> None:
    s = served(timeout=httpx.Timeout(5.0, read=0.2))
    s.graph.latency = s.twilio.latency = 0.6  # accepted, but answered after the read timeout
    for user in META_USERS[:3]:
        s.write("meta", user, "hola")
    for user in TWILIO_USERS[:2]:
        s.write("twilio", user, "oi")
    assert [r.status for r in s.receipts] == ["unknown"] * 5
    wait_until(lambda: len(s.graph.sent) == 3 and len(s.twilio.sent) == 2, "the fakes to accept")
    s.graph.latency = s.twilio.latency = 0
    s.statuses()  # sent → delivered → read, each echoing its send's correlation key
    assert s.store.pending_sends() == []
    s.clock.advance(hours=1)  # long past the grace period: nothing is sent again
    assert s.bot.flush_outbox() == 0
    assert len(s.graph.sent) == 3 and len(s.twilio.sent) == 2  # 0 duplicates, no failover
    for provider, fake in (("meta", s.graph), ("twilio", s.twilio)):
        for sent in fake.sent:
            row = s.store.get_message(provider, sent.id)
            assert row is not None and row.status == "read" and row.reason == "unknown:OutcomeUnknown"
    assert sorted(r.status for r in s.store.list_log(direction="out")) == ["read"] * 5


def test_an_unresolved_send_is_sent_again_after_the_grace_period(served: Callable[..., Served]) -> None:
    s = served(timeout=httpx.Timeout(5.0, read=0.2), whatsapp_provider="meta")
    s.graph.latency = 0.6
    s.graph.auto_status = ()  # the status never comes
    s.write("meta", META_USERS[0], "hola")
    (receipt,) = s.receipts
    assert receipt.status == "unknown"
    wait_until(lambda: len(s.graph.sent) == 1, "the fake to accept")
    s.graph.latency = 0
    assert s.bot.flush_outbox() == 0  # within the grace period: it waits
    s.clock.advance(seconds=121)
    assert s.bot.flush_outbox() == 1
    assert [m.text for m in s.graph.sent] == ["eco: hola", "eco: hola"]  # what the grace trades
    row = s.store.get_message("meta", s.graph.sent[1].id)
    assert row is not None and row.extra["outbox"] == receipt.message_id
    assert s.store.pending_sends() == []


def test_a_window_that_closes_while_queued_sends_the_fallback_template(served: Callable[..., Served]) -> None:
    s = served(
        whatsapp_provider="meta",
        whatsapp_outbox_ttl_seconds=3 * 86400,
        whatsapp_fallback_template="please_reply",
    )
    with s.graph.outage("503"):
        s.write("meta", META_USERS[0], "hola")
    s.clock.advance(hours=25)  # the user's 24-hour window closed meanwhile
    assert s.bot.flush_outbox() == 1
    (sent,) = s.graph.sent
    assert sent.is_template and sent.body["template"]["name"] == "please_reply"
    row = s.store.get_message("meta", sent.id)
    assert row is not None and row.type == "template" and row.extra["fallback_template"] is True
    assert s.gone == []


def test_a_window_that_closes_while_queued_without_a_template_expires_and_says_so(
    served: Callable[..., Served],
) -> None:
    s = served(whatsapp_provider="meta", whatsapp_outbox_ttl_seconds=3 * 86400)
    with s.graph.outage("503"):
        s.write("meta", META_USERS[0], "hola")
        (receipt,) = s.receipts
    s.clock.advance(hours=25)
    assert s.bot.flush_outbox() == 1
    assert s.graph.sent == []
    (gone,) = s.gone
    assert (gone.id, gone.state, gone.to) == (receipt.message_id, "expired", META_USERS[0])
    assert "24-hour window closed" in gone.reason and "WHATSAPP_FALLBACK_TEMPLATE" in gone.reason
    item = s.store.get_send(receipt.message_id)
    assert item is not None and item.state == "expired"
    row, attempt = s.store.list_log(direction="out")  # newest first: the failed attempt came first
    assert row.status == "expired" and "24-hour window closed" in (row.error_message or "")
    assert attempt.status == "failed" and attempt.error_code == 2  # the attempt during the outage
    s.clock.advance(days=1)
    assert s.bot.flush_outbox() == 0 and len(s.gone) == 1  # the hook fired once


def test_a_send_past_its_ttl_expires(served: Callable[..., Served]) -> None:
    s = served(whatsapp_provider="meta", whatsapp_outbox_ttl_seconds=600)
    with s.graph.outage("503"):
        s.write("meta", META_USERS[0], "hola")
    s.clock.advance(minutes=11)
    assert s.bot.flush_outbox() == 1
    (gone,) = s.gone
    assert gone.state == "expired" and "WHATSAPP_OUTBOX_TTL_SECONDS" in gone.reason
    assert s.graph.sent == []


def test_a_caller_can_fail_fast_instead(served: Callable[..., Served]) -> None:
    s = served(whatsapp_provider="meta")
    with s.graph.outage("refuse"), pytest.raises(ProviderDown, match="could not connect"):
        s.bot.send(META_USERS[0], Template("order_update", "en_US"), queue=False)
    assert s.store.pending_sends() == []
