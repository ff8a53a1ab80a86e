"""Settings from the environment and .env, with the seed's variable names."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from eki_whatsapp import Bot, ConfigError, MemoryStore, Settings

SEED_ENV = """\
WHATSAPP_PROVIDER=dual
META_WHATSAPP_TOKEN=EAAG-from-dotenv
META_PHONE_NUMBER_ID=106540352242922
META_VERIFY_TOKEN=verify-me
META_BUSINESS_ACCOUNT_ID=102290129340398
TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef
TWILIO_AUTH_TOKEN=twilio-secret
TWILIO_WHATSAPP_NUMBER=whatsapp:+14155238886
"""

_ALL = [
    "WHATSAPP_PROVIDER", "META_WHATSAPP_TOKEN", "META_PHONE_NUMBER_ID", "META_VERIFY_TOKEN",
    "META_BUSINESS_ACCOUNT_ID", "META_APP_SECRET", "META_GRAPH_VERSION", "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_NUMBER", "WHATSAPP_WEBHOOK_URL", "WHATSAPP_STORE_URL",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _ALL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_reads_seed_names_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(SEED_ENV)
    s = Settings()
    assert s.whatsapp_provider == "dual"
    assert (
        s.meta_whatsapp_token is not None and s.meta_whatsapp_token.get_secret_value() == "EAAG-from-dotenv"
    )
    assert s.meta_phone_number_id == "106540352242922"
    assert s.meta_business_account_id == "102290129340398"
    assert s.twilio_whatsapp_number == "+14155238886"
    assert s.twilio_from == "whatsapp:+14155238886"
    assert s.meta_graph_version == "v26.0"
    s.check()  # complete


def test_environment_overrides_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(SEED_ENV)
    monkeypatch.setenv("WHATSAPP_PROVIDER", "twilio")
    monkeypatch.setenv("META_GRAPH_VERSION", "v25.0")
    s = Settings()
    assert s.whatsapp_provider == "twilio" and s.meta_graph_version == "v25.0"
    assert s.enabled_providers == ("twilio",)


@pytest.mark.parametrize(
    "number", ["whatsapp:+14155238886", "+14155238886", "14155238886", "+1 415-523-8886"]
)
def test_twilio_number_accepts_both_forms(number: str) -> None:
    s = Settings(_env_file=None, twilio_whatsapp_number=number)  # type: ignore[call-arg]
    assert s.twilio_whatsapp_number == "+14155238886"


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(ValidationError, match="TWILIO_WHATSAPP_NUMBER"):
        Settings(_env_file=None, twilio_whatsapp_number="not a number")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="META_GRAPH_VERSION"):
        Settings(_env_file=None, meta_graph_version="26")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="whatsapp_provider"):
        Settings(_env_file=None, whatsapp_provider="telegram")  # type: ignore[call-arg]


def test_secrets_hidden_in_repr_str_and_dumps(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(SEED_ENV + "META_APP_SECRET=app-secret-xyz\nOPENAI_API_KEY=sk-abc\n")
    s = Settings()
    shown = repr(s) + str(s) + str(s.model_dump()) + s.model_dump_json()
    for secret in ("EAAG-from-dotenv", "verify-me", "twilio-secret", "app-secret-xyz", "sk-abc"):
        assert secret not in shown


@pytest.mark.parametrize(
    ("policy", "env", "missing"),
    [
        ("meta", {}, ["META_WHATSAPP_TOKEN", "META_PHONE_NUMBER_ID"]),
        ("meta", {"META_WHATSAPP_TOKEN": "t"}, ["META_PHONE_NUMBER_ID"]),
        (
            "twilio",
            {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_WHATSAPP_NUMBER": "+14155238886"},
            ["TWILIO_AUTH_TOKEN"],
        ),
        ("dual", {"META_WHATSAPP_TOKEN": "t", "META_PHONE_NUMBER_ID": "1"}, ["TWILIO_ACCOUNT_SID"]),
    ],
)
def test_missing_credentials_fail_at_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, policy: str, env: dict[str, str], missing: list[str]
) -> None:
    monkeypatch.setenv("WHATSAPP_PROVIDER", policy)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as info:
        Bot(store=MemoryStore())
    for name in missing:
        assert name in str(info.value)
    assert ".env" in str(info.value)


def test_messaging_service_replaces_twilio_number() -> None:
    s = Settings(  # type: ignore[call-arg]
        _env_file=None,
        whatsapp_provider="twilio",
        twilio_account_sid="AC1",
        twilio_auth_token="t",
        twilio_messaging_service_sid="MG1",
    )
    assert s.missing_for("twilio") == []


def test_production_requires_meta_app_secret() -> None:
    s = Settings(  # type: ignore[call-arg]
        _env_file=None,
        whatsapp_provider="meta",
        whatsapp_env="production",
        meta_whatsapp_token="t",
        meta_phone_number_id="1",
    )
    with pytest.raises(ConfigError, match="META_APP_SECRET"):
        s.check()


def test_blank_secret_counts_as_missing() -> None:
    s = Settings(_env_file=None, whatsapp_provider="meta", meta_whatsapp_token="  ", meta_phone_number_id="1")  # type: ignore[call-arg]
    assert s.missing_for("meta") == ["META_WHATSAPP_TOKEN"]
