"""Fixtures for the tests of ``eki_whatsapp.testing``: fakes, settings and bots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from eki_whatsapp import Bot, MemoryStore, Settings
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI

APP_SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"


def settings_for(*fakes: Any, **overrides: Any) -> Settings:
    """Settings for a bot pointed at the given fakes (and signature secrets always on)."""
    fields: dict[str, Any] = {
        "whatsapp_provider": "dual",
        "whatsapp_store_url": "memory://",
        "meta_app_secret": APP_SECRET,
        "twilio_auth_token": TWILIO_TOKEN,
    }
    for fake in fakes:
        fields.update(fake.settings_fields())
    fields.update(overrides)
    return Settings(_env_file=None, **fields)


class Recorder:
    """Handlers that remember every event they got."""

    def __init__(self, bot: Bot) -> None:
        self.messages: list[Any] = []
        self.statuses: list[Any] = []
        self.changes: list[Any] = []
        bot.on_message(lambda m: self.messages.append(m))
        bot.on_status(lambda s: self.statuses.append(s))
        bot.on_change(lambda c: self.changes.append(c))


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    fake = FakeGraphAPI(app_secret=APP_SECRET)
    yield fake
    fake.close()


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilioAPI]:
    fake = FakeTwilioAPI(auth_token=TWILIO_TOKEN)
    yield fake
    fake.close()


@pytest.fixture
def parse_bot() -> Iterator[tuple[Bot, Recorder]]:
    """An inline bot without providers: handle() runs handlers before answering."""
    bot = Bot(settings_for(), store=MemoryStore(), providers={}, inline=True)
    yield bot, Recorder(bot)
    bot.close()


@pytest.fixture
def make_bot() -> Iterator[Callable[..., tuple[Bot, Recorder]]]:
    bots: list[Bot] = []

    def make(*fakes: Any, inline: bool = True, **overrides: Any) -> tuple[Bot, Recorder]:
        bot = Bot(settings_for(*fakes, **overrides), store=MemoryStore(), inline=inline)
        bots.append(bot)
        return bot, Recorder(bot)

    yield make
    for bot in bots:
        bot.close()


def providers_for(
    graph: FakeGraphAPI | None = None, twilio: FakeTwilioAPI | None = None, **retry: Any
) -> dict:
    """Real provider classes pointed at the fakes, failing fast (no retry sleeps) by default."""
    from eki_whatsapp.providers import RetryPolicy
    from eki_whatsapp.providers.meta import MetaCloud
    from eki_whatsapp.providers.twilio import Twilio

    policy = RetryPolicy(**retry) if retry else RetryPolicy.none()
    providers: dict[str, Any] = {}
    if graph is not None:
        providers["meta"] = MetaCloud(
            graph.token, graph.phone_number_id, base_url=graph.base_url, retry=policy
        )
    if twilio is not None:
        providers["twilio"] = Twilio(
            twilio.account_sid, twilio.auth_token, from_=twilio.number, base_url=twilio.base_url, retry=policy
        )
    return providers


class Stack:
    """A served bot wired to both fakes: inbound over HTTP, replies through the real providers,
    statuses back from the fakes, signed."""

    def __init__(
        self, graph: FakeGraphAPI, twilio: FakeTwilioAPI, policy: str = "dual", **settings: Any
    ) -> None:
        from eki_whatsapp.testing import serve_bot

        self.graph, self.twilio = graph, twilio
        self.bot = Bot(
            settings_for(graph, twilio, whatsapp_provider=policy, **settings),
            store=MemoryStore(),
            providers=providers_for(graph, twilio),
            inline=True,
        )
        self.seen = Recorder(self.bot)
        self.server = serve_bot(self.bot)
        graph.webhook_url = twilio.webhook_url = self.server.url

    def post(self, payload: Any) -> Any:
        secret = APP_SECRET if payload.provider == "meta" else TWILIO_TOKEN
        return payload.post(self.server.url, secret=secret)

    def flush(self) -> None:
        assert self.graph.flush() and self.twilio.flush()
        assert self.bot.drain()

    def close(self) -> None:
        self.server.close()
        self.bot.close()


@pytest.fixture
def stack(graph: FakeGraphAPI, twilio_api: FakeTwilioAPI) -> Iterator[Stack]:
    s = Stack(graph, twilio_api)
    yield s
    s.close()
