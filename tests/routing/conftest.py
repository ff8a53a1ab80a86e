"""Fixtures for routing and cost tests: two fake providers, a fake clock, a store, a router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eki_whatsapp import MemoryStore, Settings, SQLiteStore
from eki_whatsapp.events import InboundMessage
from eki_whatsapp.routing import Router

from .fakes import Clock, FakeProvider

META_ID = "106540352242922"  # Meta phone-number id (docs/wire.md §3.5)
TWILIO_NUMBER = "14155238886"
USER = "16505551234"  # a US user (docs/wire.md §3.5)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "whatsapp_provider": "dual",
        "meta_whatsapp_token": "EAAG-test-token",
        "meta_phone_number_id": META_ID,
        "twilio_account_sid": "AC0123456789abcdef0123456789abcdef",
        "twilio_auth_token": "0123456789abcdef0123456789abcdef",
        "twilio_whatsapp_number": "whatsapp:+" + TWILIO_NUMBER,
        "whatsapp_store_url": "memory://",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def inbound(provider: str, at: Any, user: str = USER, msg_id: str | None = None) -> InboundMessage:
    business = META_ID if provider == "meta" else TWILIO_NUMBER
    return InboundMessage(
        provider=provider,  # type: ignore[arg-type]
        id=msg_id or f"in-{provider}-{user}-{at.timestamp()}",
        sender=user,
        recipient=business,
        type="text",
        timestamp=at,
        raw={},
        text="hi",
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    s = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "routing.sqlite3")
    yield s
    s.close()


@pytest.fixture
def meta() -> FakeProvider:
    return FakeProvider("meta", META_ID)


@pytest.fixture
def twilio() -> FakeProvider:
    return FakeProvider("twilio", TWILIO_NUMBER)


@pytest.fixture
def make_router(store: Any, clock: Clock, meta: FakeProvider, twilio: FakeProvider) -> Callable[..., Router]:
    def build(*, providers: dict[str, FakeProvider] | None = None, **settings: Any) -> Router:
        router_kwargs = {k: settings.pop(k) for k in ("fallback_template", "rng") if k in settings}
        return Router(
            providers if providers is not None else {"meta": meta, "twilio": twilio},
            store,
            make_settings(**settings),
            clock=clock,
            **router_kwargs,
        )

    return build
