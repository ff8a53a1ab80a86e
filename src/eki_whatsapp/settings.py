"""Configuration read from the environment and a ``.env`` file.

Every field maps to the environment variable of the same name in upper case
(``meta_whatsapp_token`` ↔ ``META_WHATSAPP_TOKEN``). Secrets are
:class:`pydantic.SecretStr`, so they never appear in ``repr()``, logs or exceptions.

Example::

    from eki_whatsapp import Settings

    settings = Settings()                      # environment + ./.env
    settings = Settings(_env_file="prod.env")  # another file
    settings = Settings(whatsapp_provider="meta", meta_whatsapp_token="EAAG...",
                        meta_phone_number_id="1065...")
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .addresses import strip_channel
from .errors import ConfigError, SettingProblem, SettingsError
from .i18n import N_

ProviderName = Literal["meta", "twilio"]
Policy = Literal["dual", "meta", "twilio"]

_E164 = re.compile(r"^\+?[1-9]\d{6,14}$")

#: Which variables each provider needs before it can send.
REQUIRED: dict[str, tuple[str, ...]] = {
    "meta": ("META_WHATSAPP_TOKEN", "META_PHONE_NUMBER_ID"),
    "twilio": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_NUMBER"),
}

#: Tokens, secrets and ids: a space, a quote or a non-ASCII character inside one is always a
#: copy-paste accident (and cannot be sent in an HTTP header), so such a value is refused.
CREDENTIALS = (
    "meta_whatsapp_token",
    "meta_phone_number_id",
    "meta_business_account_id",
    "meta_app_secret",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_auth_token_secondary",
    "twilio_messaging_service_sid",
    "openai_api_key",
)


class Settings(BaseSettings):
    """All settings of a bot. See ``docs/configuration.md`` for every variable."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    #: Variables whose value had spaces around it, removed when the settings were read.
    _trimmed: tuple[str, ...] = PrivateAttr(default=())

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            # One place turns pydantic's report into one that names the variable, what it holds,
            # what is allowed and the closest valid value, for every entry point.
            raise SettingsError([_problem(type(self), error) for error in exc.errors()]) from None

    # --- policy -------------------------------------------------------------------------
    whatsapp_provider: Policy = Field("dual", description="dual | meta | twilio")
    whatsapp_env: Literal["development", "production"] = Field(
        "development", description="production refuses to start without signature secrets"
    )

    # --- Meta WhatsApp Cloud API ----------------------------------------------------------
    meta_whatsapp_token: SecretStr | None = None
    meta_phone_number_id: str | None = None
    meta_verify_token: SecretStr | None = None
    meta_business_account_id: str | None = None
    meta_app_secret: SecretStr | None = None
    meta_graph_version: str = "v26.0"
    meta_graph_base_url: str = "https://graph.facebook.com"

    # --- Twilio ------------------------------------------------------------------------
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    #: Second auth token accepted for signatures while rotating tokens.
    twilio_auth_token_secondary: SecretStr | None = None
    twilio_whatsapp_number: str | None = Field(
        None, description="sender number, 'whatsapp:+14155238886' or '+14155238886'"
    )
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_status_callback_url: str | None = None

    # --- webhook -----------------------------------------------------------------------
    #: The public URL of the webhook as the providers call it (Twilio signs it).
    #: Needed behind proxies/TLS terminators where the app sees another URL.
    whatsapp_webhook_url: str | None = None
    #: Meta documents webhook payloads of up to 3 MB (batched updates); keep a margin above that.
    whatsapp_max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    #: Run handlers before answering the webhook (tests, serverless) instead of after.
    whatsapp_inline_handlers: bool = False
    whatsapp_handler_workers: int = Field(8, gt=0)
    #: Durable handling (docs/deployment.md): where claimed work runs (``threads``: this process;
    #: ``celery``: Celery worker processes, the ``celery`` extra).
    whatsapp_runner: str = "threads"
    #: The bot of worker processes (``WHATSAPP_RUNNER=celery``): ``package.module:attribute``
    #: naming a Bot or a function returning one (with no argument, or the settings).
    whatsapp_bot: str | None = None
    #: The broker of the Celery app the library builds (``redis://127.0.0.1:6379/0``,
    #: ``amqp://guest:guest@127.0.0.1:5672//``). Left out of ``repr()``: it can hold a password.
    whatsapp_celery_broker_url: str | None = Field(None, repr=False)
    #: Your own Celery app instead (``package.module:attribute``); see docs/deployment.md.
    whatsapp_celery_app: str | None = None
    #: The queue of the handling tasks (default: the app's default queue, ``celery``).
    whatsapp_celery_queue: str | None = None
    #: Attempts at handling an event before it is marked ``dead`` (``eki-whatsapp retry`` revives it).
    whatsapp_handler_max_attempts: int = Field(5, gt=0)
    #: How long a worker holds an event it handles; after that another worker may take it over.
    #: Longer than your slowest handler (an agent turn with tools), or it may run twice.
    whatsapp_handler_lease_seconds: float = Field(120.0, gt=0)
    #: Wait before the 2nd attempt after a handler failed; doubled per attempt (at most an hour).
    whatsapp_handler_backoff_seconds: float = Field(5.0, ge=0)
    #: How often the sweeper looks for expired leases and due retries (0: only at start).
    whatsapp_sweep_interval_seconds: float = Field(15.0, ge=0)
    #: The outbox (docs/deployment.md): how long a send that no provider could take keeps
    #: being retried before it is ``expired`` (and ``on_undeliverable`` is called).
    whatsapp_outbox_ttl_seconds: float = Field(86400.0, gt=0)
    #: Wait before retrying a queued send; doubled per attempt (at most 5 minutes).
    whatsapp_outbox_backoff_seconds: float = Field(5.0, ge=0)
    #: How long a send whose answer was lost (a timeout after the request left) waits for a
    #: status webhook to say it went out, before it is sent again.
    whatsapp_ambiguous_grace_seconds: float = Field(120.0, ge=0)

    # --- storage -----------------------------------------------------------------------
    #: ``sqlite:///path/to/file.sqlite3`` (default: a file in the working directory), ``memory://``
    #: or ``postgresql://user:password@host:5432/db``. Left out of ``repr()``: it can hold a password.
    whatsapp_store_url: str = Field("sqlite:///eki_whatsapp.sqlite3", repr=False)

    # --- routing and costs (docs/routing.md, docs/costs.md) ------------------------------------
    #: Split of business-initiated messages between providers of the same price in ``dual``
    #: mode (with ``WHATSAPP_BALANCE``: whatever the price): ``"meta=3,twilio=1"`` or JSON
    #: ``{"meta": 3, "twilio": 1}``. Empty: ties go to the policy's order (Meta first).
    whatsapp_weights: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    #: ``true``: the weights split business-initiated messages whatever the price (load
    #: balancing). ``false`` (default): price decides and the weights only split ties.
    whatsapp_balance: bool = False
    #: A message may fail over to a business number the user never wrote to (it shows as a new
    #: chat; the log reason ends in ``:other-number``) when none of theirs can send it. ``false``:
    #: it fails instead.
    whatsapp_failover_other_number: bool = True
    #: Messages per month that Meta sends free of charge (route to Meta first while they last).
    whatsapp_meta_free_allowance: int = Field(0, ge=0)
    #: Categories the free allowance covers (comma-separated); empty: every billable category.
    whatsapp_free_allowance_categories: Annotated[tuple[str, ...], NoDecode] = ()
    #: The language the bot speaks with its users (``es``, ``pt_BR``, ...): the agent's fallback
    #: and refusal texts use it when a user's own language cannot be told. Empty: the fallback
    #: template's language below.
    whatsapp_language: str | None = None
    #: Template sent instead of a free-form message when the 24-hour window is closed.
    whatsapp_fallback_template: str | None = None
    whatsapp_fallback_template_language: str = "en"
    #: Twilio Content SID (``HX...``) of the same fallback template.
    whatsapp_fallback_template_content_sid: str | None = None
    whatsapp_fallback_template_category: str = "utility"
    #: Path of a JSON price table that replaces the shipped one (see docs/costs.md).
    whatsapp_price_table: str | None = None
    #: Reported price changes, not verified on the provider's page, to apply anyway
    #: (comma-separated rule names of the price table, e.g. ``meta-2026-10``; docs/pricing.md).
    whatsapp_price_rules: Annotated[tuple[str, ...], NoDecode] = ()
    #: Market used for pricing when the recipient's country cannot be told from the number.
    whatsapp_default_market: str | None = None
    #: Consecutive failures that open a provider's circuit breaker, and how long it stays open.
    whatsapp_breaker_threshold: int = Field(3, gt=0)
    whatsapp_breaker_cooldown_seconds: float = Field(60.0, ge=0)
    #: How often a process reads the breakers' state shared through the store: another
    #: process's breaker opening (or closing) is seen here within this time.
    whatsapp_breaker_sync_seconds: float = Field(1.0, ge=0)
    #: Safety margin: treat the 24-hour window as closed this many seconds early.
    whatsapp_window_margin_seconds: float = Field(60.0, ge=0)

    # --- opt-out and human handoff (docs/support-console.md) ---------------------------------
    #: Whole-message keywords that opt a user out (comma-separated); default: STOP, BAJA, ALTO,
    #: CANCELAR, PARAR, UNSUBSCRIBE... (see eki_whatsapp.optout). Empty: no keyword handling.
    whatsapp_optout_keywords: Annotated[tuple[str, ...] | None, NoDecode] = None
    #: Keywords that subscribe an opted-out user again; default: START, ALTA, INICIAR, UNSTOP...
    whatsapp_optin_keywords: Annotated[tuple[str, ...] | None, NoDecode] = None
    #: Confirmation texts (default: in the language of the keyword: Spanish, English, Portuguese).
    whatsapp_optout_confirmation: str | None = None
    whatsapp_optin_confirmation: str | None = None
    #: Hand a conversation back to the bot after this many seconds without staff activity (0: never).
    whatsapp_handoff_idle_seconds: float = Field(1800.0, ge=0)

    # --- agent -------------------------------------------------------------------------
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4.1-mini"
    openai_base_url: str | None = None
    #: Threads for the agent's sync tools (a pool of their own: a hung tool cannot stall others).
    agent_tool_threads: int = Field(8, gt=0)

    @field_validator("twilio_whatsapp_number")
    @classmethod
    def _normalise_twilio_number(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        number = strip_channel(value).replace(" ", "").replace("-", "")
        if not _E164.match(number):
            raise ValueError(
                N_("it must be an E.164 number such as 'whatsapp:+14155238886' or '+14155238886'")
            )
        return "+" + number.lstrip("+")

    @field_validator("whatsapp_weights", mode="before")
    @classmethod
    def _parse_weights(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            if text.startswith("{"):
                import json

                return json.loads(text)
            weights: dict[str, str] = {}
            for part in text.split(","):
                name, sep, weight = part.replace(":", "=").partition("=")
                if not sep or not name.strip():
                    raise ValueError(N_("it must look like 'meta=3,twilio=1'"))
                weights[name.strip().lower()] = weight.strip()
            return weights
        return value

    @field_validator("whatsapp_weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if name not in ("meta", "twilio"):
                raise ValueError(N_("it may only name meta and twilio, e.g. 'meta=3,twilio=1'"))
            if weight < 0:
                raise ValueError(N_("a weight must not be negative"))
        return value

    @field_validator("whatsapp_free_allowance_categories", "whatsapp_price_rules", mode="before")
    @classmethod
    def _parse_categories(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(c.strip().lower() for c in value.split(",") if c.strip())
        return value

    @field_validator("whatsapp_optout_keywords", "whatsapp_optin_keywords", mode="before")
    @classmethod
    def _parse_keywords(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("meta_graph_version")
    @classmethod
    def _check_graph_version(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"v\d+\.\d+", value):
            raise ValueError(N_("it must look like 'v26.0'"))
        return value

    @field_validator("meta_graph_base_url", "twilio_api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="wrap")
    @classmethod
    def _trim(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        """Every text value is read the same way, wherever it comes from (environment, ``.env``,
        Django settings, keyword arguments): spaces around it are removed and remembered (the
        doctor reports them), and an empty value counts as not set (an empty list stays empty)."""
        trimmed: list[str] = []
        if isinstance(data, dict):
            cleaned: dict[str, Any] = {}
            for key, value in data.items():
                text = value.get_secret_value() if isinstance(value, SecretStr) else value
                if isinstance(text, str):
                    if not text.strip() and not _empty_is_a_value(cls, str(key)):
                        continue  # unset: the default applies
                    if text != text.strip():
                        trimmed.append(str(key).upper())
                    value = text.strip()
                cleaned[key] = value
            data = cleaned
        settings = handler(data)
        settings._trimmed = tuple(trimmed)
        return settings

    @field_validator(*CREDENTIALS)
    @classmethod
    def _check_credential(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None:
            return value
        if any(c.isspace() for c in text):
            raise ValueError(N_("it has a space or a line break inside; copy the value again"))
        if any(c in "\"'" for c in text):
            raise ValueError(N_("it contains quotes; write the value without them"))
        if not text.isascii() or not text.isprintable():
            raise ValueError(N_("it contains a character that is not plain ASCII; copy the value again"))
        return value

    @field_validator("whatsapp_provider", "whatsapp_env", mode="before")
    @classmethod
    def _lower_case_choice(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def trimmed_variables(self) -> tuple[str, ...]:
        """Variables whose value had spaces around it (removed), e.g. a quoted ``.env`` value."""
        return self._trimmed

    # --- derived -----------------------------------------------------------------------
    @property
    def enabled_providers(self) -> tuple[ProviderName, ...]:
        """Providers the policy names: ``("meta", "twilio")`` for ``dual``."""
        if self.whatsapp_provider == "dual":
            return ("meta", "twilio")
        return (self.whatsapp_provider,)

    @property
    def twilio_from(self) -> str | None:
        """The Twilio sender as Twilio wants it: ``whatsapp:+14155238886``."""
        return f"whatsapp:{self.twilio_whatsapp_number}" if self.twilio_whatsapp_number else None

    def missing_for(self, provider: ProviderName) -> list[str]:
        """Names of the variables ``provider`` still needs (empty when it can send)."""
        missing = []
        for name in REQUIRED[provider]:
            if name == "TWILIO_WHATSAPP_NUMBER" and self.twilio_messaging_service_sid:
                continue
            if getattr(self, name.lower()) is None:
                missing.append(name)
        return missing

    def check(self, *, credentials: bool = True, providers: Iterable[str] = ()) -> None:
        """Fail with :class:`ConfigError` naming every variable the policy needs but lacks.

        ``credentials=False`` (a :class:`~eki_whatsapp.Bot` given its ``providers``) checks only
        what ``WHATSAPP_ENV=production`` demands: the signature secret of every provider the
        policy names or ``providers`` holds.
        """
        problems = []
        for provider in self.enabled_providers if credentials else ():
            missing = self.missing_for(provider)
            if missing:
                problems.append(
                    f"WHATSAPP_PROVIDER={self.whatsapp_provider} uses {provider} but "
                    f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
                )
        problems += self._production_problems({*self.enabled_providers, *providers}, reported=problems)
        if problems:
            raise ConfigError(
                "; ".join(problems) + ". Set them in the environment or in .env (see docs/configuration.md), "
                "or choose another WHATSAPP_PROVIDER."
            )

    def _production_problems(self, providers: set[str], reported: list[str]) -> list[str]:
        """What production mode refuses: a provider in use whose webhooks could not be verified."""
        if self.whatsapp_env != "production":
            return []
        problems = []
        if "meta" in providers and self.meta_app_secret is None:
            problems.append(
                "WHATSAPP_ENV=production needs META_APP_SECRET so that Meta webhook signatures are "
                "checked (App Dashboard > App settings > Basic > App secret)"
            )
        twilio_reported = any("TWILIO_AUTH_TOKEN" in problem for problem in reported)
        if "twilio" in providers and self.twilio_auth_token is None and not twilio_reported:
            problems.append(
                "WHATSAPP_ENV=production needs TWILIO_AUTH_TOKEN so that Twilio webhook signatures "
                "are checked (Twilio Console > Account > API keys & tokens > Auth Token)"
            )
        return problems


# --- pydantic's report → SettingProblem ----------------------------------------------------------------
#: What each kind of pydantic error means, in words a user reads (``{...}`` from the error's context).
_PROBLEMS = {
    "literal_error": N_("not an allowed value"),
    "bool_parsing": N_("not true or false"),
    "bool_type": N_("not true or false"),
    "int_parsing": N_("not a whole number"),
    "int_from_float": N_("not a whole number"),
    "float_parsing": N_("not a number"),
    "greater_than": N_("it must be greater than {gt}"),
    "greater_than_equal": N_("it must be {ge} or more"),
    "json_invalid": N_("not valid JSON"),
    "dict_type": N_("not a list of name=weight pairs"),
}


def _shown(field: str, value: object) -> str:
    """The value as the message may show it: secrets only by their length."""
    if field in Settings.model_fields and _is_secret(field):
        return f"<secret, {len(str(value))} characters>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _is_secret(field: str) -> bool:
    annotation = Settings.model_fields[field].annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _choices(field: str) -> tuple[str, ...]:
    annotation = Settings.model_fields[field].annotation
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is Literal:
            return tuple(str(choice) for choice in get_args(candidate))
    return ()


def _empty_is_a_value(model: type[BaseSettings], field: str) -> bool:
    """A list or mapping setting given as an empty string means "none" (e.g. no keywords)."""
    info = model.model_fields.get(field.lower())
    if info is None:
        return False
    return any(
        get_origin(candidate) in (tuple, dict) or candidate in (tuple, dict)
        for candidate in (info.annotation, *get_args(info.annotation))
    )


def _closest(value: object, allowed: tuple[str, ...]) -> str | None:
    text = str(value).strip().lower()
    prefixed = [choice for choice in allowed if text and choice.startswith(text)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(text, allowed, n=1, cutoff=0.5)
    return close[0] if close else None


def _problem(model: type[BaseSettings], error: Any) -> SettingProblem:
    loc = [str(part) for part in error.get("loc", ())]
    field = loc[0] if loc else ""
    variable = field.upper() or "SETTINGS"
    value = error.get("input")
    if field not in model.model_fields:
        return SettingProblem(variable, repr(value), str(error.get("msg", "")))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    allowed: tuple[str, ...] = ()
    suggestion = None
    if kind == "literal_error":
        allowed = _choices(field)
        suggestion = _closest(value, allowed)
    elif kind in ("bool_parsing", "bool_type"):
        allowed = ("true", "false")
        suggestion = _closest(value, allowed)
    if kind == "value_error" and ctx.get("error") is not None:
        problem = str(ctx["error"])
    else:
        problem = _PROBLEMS.get(kind, str(error.get("msg", "")))
    if len(loc) > 1 and field == "whatsapp_weights":
        value = f"{loc[1]}={value}"
    params = tuple((key, str(val)) for key, val in ctx.items() if key in ("gt", "ge"))
    return SettingProblem(variable, _shown(field, value), problem, params, allowed, suggestion)
