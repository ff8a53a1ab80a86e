"""Settings and the project's bot.

Settings have the core's names. Each is read from Django settings first (``WHATSAPP_PROVIDER =
"dual"`` in ``settings.py``), then from the environment and the ``.env`` file::

    # settings.py
    WHATSAPP_PROVIDER = "dual"
    META_WHATSAPP_TOKEN = os.environ["META_WHATSAPP_TOKEN"]
    EKI_WHATSAPP_BOT = "myproject.bot.setup"       # where your handlers are registered

``EKI_WHATSAPP_BOT`` names (dotted path) one of:

* a function taking one argument: it is called with the default bot (:func:`create_bot`) to
  register handlers — ``def setup(bot): bot.on_message(...)``;
* a function taking none and returning a :class:`~eki_whatsapp.Bot` (build it with
  :func:`create_bot` to keep the ORM store and DB-connection hygiene);
* a :class:`~eki_whatsapp.Bot` instance.

``EKI_WHATSAPP_ENV_FILE`` is the ``.env`` file to read (default: ``BASE_DIR / ".env"`` when that
exists, else ``.env`` in the working directory; ``None`` reads none).
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from eki_whatsapp import Bot, Settings, SettingsError, Store
from eki_whatsapp.store import open_store

from .threads import DjangoExecutor

logger = logging.getLogger("eki_whatsapp_django")

#: Django settings that configure the adapter itself (the rest have the core's names).
BOT_SETTING = "EKI_WHATSAPP_BOT"
ENV_FILE_SETTING = "EKI_WHATSAPP_ENV_FILE"
#: Prefixes of the settings that change the bot (a change in tests rebuilds it).
SETTING_PREFIXES = ("WHATSAPP_", "META_", "TWILIO_", "OPENAI_", "EKI_WHATSAPP_")

_UNSET: Any = object()


def _env_file() -> str | Path | None:
    configured = getattr(django_settings, ENV_FILE_SETTING, _UNSET)
    if configured is not _UNSET:
        return configured  # type: ignore[no-any-return]
    base_dir = getattr(django_settings, "BASE_DIR", None)
    if base_dir is not None and (Path(base_dir) / ".env").is_file():
        return Path(base_dir) / ".env"
    return ".env"


def load_settings(**overrides: Any) -> Settings:
    """The core :class:`~eki_whatsapp.Settings`: Django settings, then environment, then ``.env``.

    Raises:
        ConfigError: a value is invalid; the message names the setting.
    """
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        if hasattr(django_settings, name.upper()):
            values[name] = getattr(django_settings, name.upper())
    values.update(overrides)
    try:
        return Settings(_env_file=_env_file(), **values)
    except SettingsError as exc:
        raise SettingsError(
            exc.problems, "Fix it in Django settings, the environment or .env (see docs/configuration.md)."
        ) from None


def default_store(settings: Settings) -> Store:
    """The ORM store when the app is installed, else the core's ``WHATSAPP_STORE_URL`` store."""
    if apps.is_installed("eki_whatsapp_django"):
        from .store import DjangoStore

        return DjangoStore()
    return open_store(settings.whatsapp_store_url)


def project_celery_app(settings: Settings) -> Any:
    """The project's Celery app for ``WHATSAPP_RUNNER=celery`` — the current app, which the
    project's ``__init__.py`` loads as in Celery's Django guide — unless ``WHATSAPP_CELERY_APP``
    or ``WHATSAPP_CELERY_BROKER_URL`` says otherwise (``None``: the core decides)."""
    if settings.whatsapp_celery_app or settings.whatsapp_celery_broker_url:
        return None
    try:
        from celery import current_app
    except ImportError:
        return None  # the core names the extra to install
    if not current_app.conf.broker_url:
        raise ImproperlyConfigured(
            "WHATSAPP_RUNNER='celery' found no Celery app with a broker: load the project's app in "
            "its __init__.py (Celery's Django guide) with CELERY_BROKER_URL set, or set "
            "WHATSAPP_CELERY_APP or WHATSAPP_CELERY_BROKER_URL"
        )
    return current_app._get_current_object()


_executors: weakref.WeakKeyDictionary[Bot, DjangoExecutor] = weakref.WeakKeyDictionary()


def create_bot(settings: Settings | None = None, **options: Any) -> Bot:
    """A :class:`~eki_whatsapp.Bot` wired for Django: settings from :func:`load_settings`, the ORM
    store, and background handlers that close stale DB connections.

    ``options`` go to ``Bot`` (``providers=``, ``inline=``, ``router=``, ...).
    """
    settings = settings if settings is not None else load_settings()
    own_executor: DjangoExecutor | None = None
    if options.get("executor") is None:
        own_executor = DjangoExecutor(
            max_workers=settings.whatsapp_handler_workers, thread_name_prefix="eki-whatsapp"
        )
        options["executor"] = own_executor
    options.setdefault("store", default_store(settings))
    if settings.whatsapp_runner == "celery" and options.get("celery_app") is None:
        options["celery_app"] = project_celery_app(settings)
    bot = Bot(settings, **options)
    if own_executor is not None:
        _executors[bot] = own_executor
    return bot


_lock = threading.Lock()
_bot: Bot | None = None
#: Whether ``_bot`` was built here (and may be closed here) rather than handed over as an instance.
_owned = False


def _takes_argument(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) and p.default is p.empty
        for p in params
    )


def _build_bot() -> tuple[Bot, bool]:
    """The bot named by ``EKI_WHATSAPP_BOT``, and whether it was built here."""
    target = getattr(django_settings, BOT_SETTING, None)
    if target is None:
        return create_bot(), True
    try:
        obj = import_string(target) if isinstance(target, str) else target
    except ImportError as exc:
        raise ImproperlyConfigured(f"{BOT_SETTING}={target!r} cannot be imported: {exc}") from exc
    if isinstance(obj, Bot):
        return obj, False
    if callable(obj):
        if _takes_argument(obj):
            bot = create_bot()
            try:
                result = obj(bot)
            except BaseException:
                close_bot(bot)
                raise
            if isinstance(result, Bot) and result is not bot:
                close_bot(bot)
                return result, False
            return bot, True
        result = obj()
        if isinstance(result, Bot):
            # The factory may hand out one shared instance: never closed here.
            return result, False
    raise ImproperlyConfigured(
        f"{BOT_SETTING}={target!r} must name a Bot, a function returning a Bot, or a function "
        "taking the default bot to register handlers on"
    )


def get_bot() -> Bot:
    """The project's bot, built on first use from ``EKI_WHATSAPP_BOT`` (or the default bot)."""
    global _bot, _owned
    with _lock:
        if _bot is None:
            _bot, _owned = _build_bot()
            if apps.is_installed("eki_whatsapp_django"):
                from .sync import connect_bot

                connect_bot(_bot)
            logger.info("WhatsApp bot ready: %r", _bot)
        return _bot


def reset_bot() -> None:
    """Forget the project's bot; the next :func:`get_bot` builds it again from the settings.

    Only a bot built here (the default bot, or the one a setup function was given) is closed; a bot
    from a factory or an instance may be shared, so it is left open.
    """
    global _bot, _owned
    with _lock:
        bot, owned, _bot, _owned = _bot, _owned, None, False
    if bot is not None and owned:
        close_bot(bot)


def close_bot(bot: Bot) -> None:
    """Close a bot and the worker pool :func:`create_bot` gave it."""
    bot.close()
    executor = _executors.pop(bot, None)
    if executor is not None:
        executor.shutdown(wait=True)
