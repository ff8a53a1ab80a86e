"""The Django app: add ``"eki_whatsapp_django"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class EkiWhatsAppConfig(AppConfig):
    """Registers the models and admin, and rebuilds the bot when its settings change (tests)."""

    name = "eki_whatsapp_django"
    verbose_name = "WhatsApp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        setting_changed.connect(_on_setting_changed, dispatch_uid="eki_whatsapp_django.setting_changed")


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    from .conf import SETTING_PREFIXES, reset_bot

    if setting.startswith(SETTING_PREFIXES):
        reset_bot()
