"""A bad WhatsApp setting in a Django project is explained the way the core explains it, naming
Django settings as a place to fix it (issue 16, item 4)."""

from __future__ import annotations

from typing import Any

import pytest

from eki_whatsapp import ConfigError, SettingsError
from eki_whatsapp_django import load_settings


def test_a_misspelt_provider_in_django_settings_is_explained(settings: Any) -> None:
    settings.WHATSAPP_PROVIDER = "dul"
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert isinstance(info.value, ConfigError)
    message = str(info.value)
    assert "WHATSAPP_PROVIDER is 'dul': not an allowed value (allowed: dual, meta, twilio)." in message
    assert "Did you mean 'dual'?" in message
    assert "Django settings" in message


def test_whatsapp_doctor_points_at_sqlite_settings_that_let_writers_fail(settings: Any) -> None:
    from django.db import connection

    from eki_whatsapp_django.management.commands.whatsapp_doctor import sqlite_check

    check = sqlite_check()
    if connection.vendor == "sqlite":
        assert check is not None and check.status == "ok"  # the test site has them
    else:
        assert check is None  # the suite's second run is on PostgreSQL: nothing to say
    as_created = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
    check = sqlite_check(databases=as_created)
    assert check is not None and check.status == "warn"
    assert '"timeout": 20' in check.detail and "OPTIONS" in check.fix
    assert sqlite_check(databases={"default": {"ENGINE": "django.db.backends.postgresql"}}) is None
