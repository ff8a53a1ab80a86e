"""Flask test set-up: fake Graph and Twilio APIs on 127.0.0.1 and a bot that echoes texts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ekifl_kit import META_SECRET, VERIFY_TOKEN
from flask import Flask

from eki_whatsapp import Bot, Settings, SQLiteStore
from eki_whatsapp.testing import FakeGraphAPI, FakeTwilioAPI
from eki_whatsapp_flask import whatsapp_blueprint


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI(app_secret=META_SECRET, auto_status=()) as fake:
        yield fake


@pytest.fixture
def twilio() -> Iterator[FakeTwilioAPI]:
    with FakeTwilioAPI(auto_status=()) as fake:
        yield fake


def echo(message: Any, ctx: Any) -> None:
    ctx.reply(f"echo: {message.text}")


@pytest.fixture
def bot(graph: FakeGraphAPI, twilio: FakeTwilioAPI, tmp_path: Path) -> Iterator[Bot]:
    settings = Settings(
        _env_file=None,
        whatsapp_provider="dual",
        meta_verify_token=VERIFY_TOKEN,
        **graph.settings_fields(),
        **twilio.settings_fields(),
    )
    made = Bot(settings, store=SQLiteStore(tmp_path / "log.sqlite3"), inline=True)
    made.on_message(echo, types=["text"])
    yield made
    made.close()


@pytest.fixture
def app(bot: Bot) -> Flask:
    flask_app = Flask(__name__)
    flask_app.register_blueprint(whatsapp_blueprint(bot), url_prefix="/webhook/whatsapp")
    return flask_app
