"""``python manage.py whatsapp_doctor [--online]``: is the WhatsApp configuration complete?

Runs the core's checks (:mod:`eki_whatsapp.doctor`: which providers are enabled, what is missing,
signature secrets, webhook URL; ``--online`` calls Meta and Twilio read-only) plus what only a
Django project can get wrong: the app, its migrations, the URL, the bot factory, proxy settings.
Exits non-zero when a check fails.
"""

from __future__ import annotations

from typing import Any

import django
from django.apps import apps
from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import NoReverseMatch, reverse

from eki_whatsapp import ConfigError, Settings
from eki_whatsapp.doctor import Check, diagnose, render

from ...conf import BOT_SETTING, get_bot, load_settings


def django_checks(settings: Settings) -> list[Check]:
    """Checks of the Django side of the integration (no network)."""
    checks: list[Check] = []
    if not apps.is_installed("eki_whatsapp_django"):
        checks.append(
            Check(
                "INSTALLED_APPS",
                "warn",
                "eki_whatsapp_django is not installed: the log is not in the database or the admin",
                'add "eki_whatsapp_django" to INSTALLED_APPS and run migrate',
            )
        )
    else:
        checks.append(Check("INSTALLED_APPS", "ok", "eki_whatsapp_django installed (ORM store, admin)"))
        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes("eki_whatsapp_django"))
        except Exception as exc:  # a database that cannot be reached is a finding, not a crash
            checks.append(Check("migrations", "fail", f"cannot read the database: {exc}", "check DATABASES"))
        else:
            if plan:
                checks.append(
                    Check("migrations", "fail", f"{len(plan)} unapplied", "run: python manage.py migrate")
                )
            else:
                checks.append(Check("migrations", "ok", "applied"))
    sqlite = sqlite_check()
    if sqlite is not None:
        checks.append(sqlite)
    try:
        path = reverse("eki_whatsapp:webhook")
    except NoReverseMatch:
        checks.append(
            Check(
                "URL",
                "warn",
                "no URL named eki_whatsapp:webhook",
                'add path("webhook/whatsapp/", include("eki_whatsapp_django.urls")) to urls.py '
                "(or mount whatsapp_view() yourself)",
            )
        )
    else:
        checks.append(Check("URL", "ok", f"webhook mounted at {path}"))
    if not settings.whatsapp_webhook_url and "twilio" in settings.enabled_providers:
        proxy = getattr(django_settings, "SECURE_PROXY_SSL_HEADER", None)
        checks.append(
            Check(
                "proxy",
                "ok" if proxy else "warn",
                f"SECURE_PROXY_SSL_HEADER={proxy!r}, USE_X_FORWARDED_HOST="
                f"{getattr(django_settings, 'USE_X_FORWARDED_HOST', False)}",
                "behind a TLS-terminating proxy, set SECURE_PROXY_SSL_HEADER (and USE_X_FORWARDED_HOST) "
                "or WHATSAPP_WEBHOOK_URL, or Twilio signatures will not match",
            )
        )
    try:
        bot = get_bot()
    except Exception as exc:
        checks.append(Check(BOT_SETTING, "fail", f"the bot cannot be built: {exc}", "fix the settings above"))
    else:
        checks.append(Check(BOT_SETTING, "ok", f"{bot!r} with {type(bot.store).__name__}"))
    return checks


def sqlite_check(alias: str = "default", databases: dict[str, Any] | None = None) -> Check | None:
    """On SQLite, the ``OPTIONS`` that let concurrent writers wait for each other (webhooks arrive
    in bursts and handlers write from threads); ``None`` on other databases."""
    database = (django_settings.DATABASES if databases is None else databases).get(alias, {})
    if "sqlite3" not in str(database.get("ENGINE", "")):
        return None
    options = database.get("OPTIONS", {})
    missing = []
    if "timeout" not in options:
        missing.append('"timeout": 20')
    if django.VERSION >= (5, 1) and str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        missing.append('"transaction_mode": "IMMEDIATE"')
    if not missing:
        return Check("SQLite", "ok", f"DATABASES[{alias!r}] lets concurrent writers wait ({options})")
    return Check(
        "SQLite",
        "warn",
        f"DATABASES[{alias!r}] is SQLite without {', '.join(missing)} in OPTIONS: writers that meet "
        "fail sooner than they need to (the store retries them for a few seconds)",
        f'add "OPTIONS": {{{", ".join(missing)}}} to DATABASES[{alias!r}] (docs/django.md, Install); '
        "for more than a few messages a second use PostgreSQL",
    )


class Command(BaseCommand):
    """Check the WhatsApp configuration and explain every problem."""

    help = "Check the WhatsApp settings (and, with --online, the credentials) and explain each problem."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--online", action="store_true", help="also call Meta and Twilio (read-only requests)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        checks = diagnose(settings, online=options["online"]) + django_checks(settings)
        self.stdout.write(render(checks))
        if any(check.status == "fail" for check in checks):
            raise CommandError("the WhatsApp configuration has problems (see above)")
