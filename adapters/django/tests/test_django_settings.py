"""Settings come from Django settings, then the environment, then ``.env``; the bot from
``EKI_WHATSAPP_BOT``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from eki_whatsapp import Bot, ConfigError, MemoryStore
from eki_whatsapp_django import DjangoStore, create_bot, get_bot, load_settings

pytestmark = pytest.mark.django_db


def test_django_settings_win_over_the_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_PROVIDER", "twilio")
    settings.WHATSAPP_PROVIDER = "meta"
    assert load_settings().whatsapp_provider == "meta"


def test_the_environment_fills_what_django_settings_lack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_MODEL", "gpt-from-env")
    assert load_settings().openai_model == "gpt-from-env"


def test_dotenv_file_is_read_after_the_environment(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("OPENAI_MODEL=gpt-from-dotenv\nMETA_GRAPH_VERSION=v25.0\n")
    settings.EKI_WHATSAPP_ENV_FILE = tmp_path / ".env"
    monkeypatch.setenv("META_GRAPH_VERSION", "v26.0")
    loaded = load_settings()
    assert loaded.openai_model == "gpt-from-dotenv"
    assert loaded.meta_graph_version == "v26.0"


def test_dotenv_next_to_base_dir_is_the_default(settings: Any, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_MODEL=gpt-base-dir\n")
    del settings.EKI_WHATSAPP_ENV_FILE
    settings.BASE_DIR = tmp_path
    assert load_settings().openai_model == "gpt-base-dir"


def test_secrets_stay_secret(settings: Any) -> None:
    settings.META_WHATSAPP_TOKEN = "EAAG-very-secret"
    assert "EAAG-very-secret" not in repr(load_settings())


def test_invalid_values_name_the_setting(settings: Any) -> None:
    settings.TWILIO_WHATSAPP_NUMBER = "not a number"
    with pytest.raises(ConfigError, match="TWILIO_WHATSAPP_NUMBER"):
        load_settings()


def test_setup_function_registers_on_the_default_bot(settings: Any) -> None:
    settings.EKI_WHATSAPP_BOT = "ekidj_site.bot.setup"
    bot = get_bot()
    assert isinstance(bot.store, DjangoStore)
    assert bot is get_bot()


def test_factory_function_returns_the_bot(settings: Any) -> None:
    made: list[Bot] = []

    def build() -> Bot:
        made.append(create_bot(store=MemoryStore()))
        return made[-1]

    settings.EKI_WHATSAPP_BOT = build
    assert get_bot() is made[0]
    assert isinstance(get_bot().store, MemoryStore)
    settings.OPENAI_MODEL = "gpt-other"  # a factory's bot may be shared: forgotten, not closed
    assert get_bot() is made[1]
    for bot in made:
        bot.close()


def test_changing_a_setting_rebuilds_the_bot(settings: Any) -> None:
    first = get_bot()
    settings.OPENAI_MODEL = "gpt-other"
    second = get_bot()
    assert second is not first
    assert second.settings.openai_model == "gpt-other"


def test_a_wrong_bot_setting_says_what_is_expected(settings: Any) -> None:
    settings.EKI_WHATSAPP_BOT = "ekidj_site.settings.SECRET_KEY"
    with pytest.raises(ImproperlyConfigured, match="must name a Bot"):
        get_bot()
    settings.EKI_WHATSAPP_BOT = "ekidj_site.nowhere.setup"
    with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
        get_bot()


def test_missing_credentials_fail_with_the_variable_name(settings: Any) -> None:
    settings.WHATSAPP_PROVIDER = "twilio"
    settings.TWILIO_AUTH_TOKEN = None
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        get_bot()


@pytest.mark.django_db(transaction=True)
def test_a_bot_instance_is_not_closed_when_settings_change(settings: Any) -> None:
    from eki_whatsapp.testing import meta_text
    from eki_whatsapp_django.conf import close_bot

    bot = create_bot(inline=False)  # handlers on the executor, which a close would shut down
    seen: list[str] = []
    bot.on_message(lambda message: seen.append(message.text))
    settings.EKI_WHATSAPP_BOT = bot
    assert get_bot() is bot
    settings.OPENAI_MODEL = "gpt-other"  # resets the project's bot
    assert get_bot() is bot
    response = bot.handle(meta_text("still open").request(secret=settings.META_APP_SECRET))
    assert response.status == 200
    assert bot.drain(timeout=10)
    close_bot(bot)
    assert seen == ["still open"]
