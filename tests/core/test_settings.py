"""Settings from the environment and .env, with the seed's variable names."""

from __future__ import annotations

from pathlib import Path

import pytest

from eki_whatsapp import Bot, ConfigError, MemoryStore, Settings, SettingsError

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
    with pytest.raises(
        SettingsError, match=r"TWILIO_WHATSAPP_NUMBER is 'not a number': it must be an E\.164"
    ):
        Settings(_env_file=None, twilio_whatsapp_number="not a number")  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match=r"META_GRAPH_VERSION is '26': it must look like 'v26\.0'"):
        Settings(_env_file=None, meta_graph_version="26")  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match="WHATSAPP_PROVIDER is 'telegram'"):
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


# --- invalid values: one clear message, wherever the settings are read (issue 16, item 4) -----------------
def test_a_misspelt_choice_names_the_variable_the_value_the_choices_and_the_closest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHATSAPP_PROVIDER", "dul")
    with pytest.raises(SettingsError) as info:
        Settings()
    message = str(info.value)
    assert message.startswith(
        "WHATSAPP_PROVIDER is 'dul': not an allowed value (allowed: dual, meta, twilio)."
    )
    assert "Did you mean 'dual'?" in message
    assert "pydantic" not in message and "validation error" not in message
    (problem,) = info.value.problems
    assert (problem.variable, problem.suggestion, problem.allowed) == (
        "WHATSAPP_PROVIDER",
        "dual",
        ("dual", "meta", "twilio"),
    )


def test_bot_raises_the_same_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_ENV", "prod")
    with pytest.raises(ConfigError, match=r"WHATSAPP_ENV is 'prod'.*Did you mean 'production'\?"):
        Bot(store=MemoryStore())


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("WHATSAPP_HANDLER_WORKERS", "ocho", "WHATSAPP_HANDLER_WORKERS is 'ocho': not a whole number."),
        ("WHATSAPP_HANDLER_WORKERS", "0", "WHATSAPP_HANDLER_WORKERS is '0': it must be greater than 0."),
        ("WHATSAPP_INLINE_HANDLERS", "treu", "(allowed: true, false). Did you mean 'true'?"),
        ("WHATSAPP_WEIGHTS", "meta=tres", "WHATSAPP_WEIGHTS is 'meta=tres': not a number."),
        ("WHATSAPP_WEIGHTS", "telegram=1", "it may only name meta and twilio"),
    ],
)
def test_every_kind_of_bad_value_is_explained(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        Settings()
    assert expected in str(info.value)


def test_choices_are_read_in_any_case() -> None:
    s = Settings(_env_file=None, whatsapp_provider="Meta ", whatsapp_env="PRODUCTION")  # type: ignore[call-arg]
    assert (s.whatsapp_provider, s.whatsapp_env) == ("meta", "production")


def test_a_bad_secret_is_described_without_showing_it() -> None:
    with pytest.raises(SettingsError) as info:
        Settings(_env_file=None, meta_app_secret="abc 123")  # type: ignore[call-arg]
    assert "abc" not in str(info.value)
    assert "META_APP_SECRET is <secret, 7 characters>: it has a space or a line break inside" in str(
        info.value
    )


# --- whitespace: the same value everywhere (issue 16, item 3) ------------------------------------------
def test_spaces_around_a_quoted_dotenv_token_are_removed_and_remembered(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('META_WHATSAPP_TOKEN="fake-meta-token "\nMETA_PHONE_NUMBER_ID=" 1065 "\n')
    s = Settings()
    assert s.meta_whatsapp_token is not None
    assert s.meta_whatsapp_token.get_secret_value() == "fake-meta-token"
    assert s.meta_phone_number_id == "1065"
    assert s.trimmed_variables == ("META_WHATSAPP_TOKEN", "META_PHONE_NUMBER_ID")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("fake meta token", "it has a space or a line break inside"),
        ("fake-meta\ntoken", "it has a space or a line break inside"),
        ('"fake-meta-token"', "it contains quotes"),
        ("fake-meta-tokén", "it contains a character that is not plain ASCII"),
    ],
)
def test_a_token_that_cannot_be_right_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("META_WHATSAPP_TOKEN", value)
    with pytest.raises(
        SettingsError, match=f"META_WHATSAPP_TOKEN is <secret, {len(value)} characters>: {problem}"
    ):
        Settings()


def test_an_empty_or_blank_value_counts_as_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_PHONE_NUMBER_ID", "")
    monkeypatch.setenv("META_GRAPH_VERSION", "  ")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.meta_phone_number_id is None and s.meta_graph_version == "v26.0"
    assert s.trimmed_variables == ()
