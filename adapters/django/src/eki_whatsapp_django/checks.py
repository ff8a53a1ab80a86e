"""System checks: ``manage.py check`` (and ``runserver``, ``migrate``) report bad WhatsApp settings,
so the first webhook never discovers them.

* ``eki_whatsapp.E001`` — a setting has an invalid value (``WHATSAPP_PROVIDER=dul``).
* ``eki_whatsapp.E002`` — the policy names a provider whose credentials are missing, or
  production mode lacks a signature secret.
* ``eki_whatsapp.E003`` — ``EKI_WHATSAPP_BOT`` cannot be imported.
* ``eki_whatsapp.W001`` — SQLite without a busy timeout (concurrent webhooks fail with
  "database is locked").
* ``eki_whatsapp.W002`` — SQLite without immediate transactions (Django 5.1+:
  ``"transaction_mode": "IMMEDIATE"``), so two writers can deadlock instead of waiting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import django
from django.apps import AppConfig
from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from eki_whatsapp import ConfigError

from .conf import BOT_SETTING, load_settings

DOCS = "see docs/django.md and docs/configuration.md"


def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E001/E002/E003: the WhatsApp settings and the bot factory."""
    found: list[CheckMessage] = []
    try:
        settings = load_settings()
    except ConfigError as exc:
        return [
            Error(
                str(exc),
                hint=_("Fix the value in settings.py, the environment or .env."),
                id="eki_whatsapp.E001",
            )
        ]
    try:
        settings.check()
    except ConfigError as exc:
        found.append(
            Error(
                str(exc),
                hint=_("Set the missing variables, or choose another WHATSAPP_PROVIDER."),
                id="eki_whatsapp.E002",
            )
        )
    target = getattr(django_settings, BOT_SETTING, None)
    if isinstance(target, str):
        try:
            import_string(target)
        except ImportError as exc:
            found.append(
                Error(
                    f"{BOT_SETTING}={target!r} cannot be imported: {exc}",
                    hint=_("Point it at a function or Bot, e.g. 'myproject.bot.setup'."),
                    id="eki_whatsapp.E003",
                )
            )
    return found


def check_database(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W001/W002: SQLite must wait for locks and take the write lock up front."""
    return sqlite_problems(getattr(django_settings, "DATABASES", None) or {})


def sqlite_problems(databases: Mapping[str, Mapping[str, Any]]) -> list[CheckMessage]:
    """The W001/W002 warnings for a ``DATABASES`` setting."""
    found: list[CheckMessage] = []
    for alias, config in databases.items():
        if config.get("ENGINE") != "django.db.backends.sqlite3":
            continue
        options = config.get("OPTIONS") or {}
        if not options.get("timeout"):
            found.append(
                Warning(
                    _(
                        "SQLite database %(alias)r has no busy timeout: concurrent webhooks will fail with "
                        "'database is locked'."
                    )
                    % {"alias": alias},
                    hint=_('Add "OPTIONS": {"timeout": 20} to DATABASES[%(alias)r].') % {"alias": alias},
                    id="eki_whatsapp.W001",
                )
            )
        if django.VERSION >= (5, 1) and str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
            found.append(
                Warning(
                    _(
                        "SQLite database %(alias)r does not use immediate transactions: two writers can fail "
                        "instead of waiting for each other."
                    )
                    % {"alias": alias},
                    hint=_('Add "transaction_mode": "IMMEDIATE" to DATABASES[%(alias)r]["OPTIONS"].')
                    % {"alias": alias},
                    id="eki_whatsapp.W002",
                )
            )
    return found
