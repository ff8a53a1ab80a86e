"""The Django app: add ``"eki_whatsapp_django"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EkiWhatsAppConfig(AppConfig):
    """Registers the models, admin, system checks and signal receivers, and rebuilds the bot when
    its settings change (tests)."""

    name = "eki_whatsapp_django"
    verbose_name = _("WhatsApp")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import setting_changed
        from django.db.models.signals import post_save

        from . import checks as eki_checks
        from . import sync
        from .models import WhatsAppLog, WhatsAppStatus

        setting_changed.connect(_on_setting_changed, dispatch_uid="eki_whatsapp_django.setting_changed")
        post_save.connect(sync.on_log_saved, sender=WhatsAppLog, dispatch_uid="eki_whatsapp_django.log")
        post_save.connect(
            sync.on_status_saved, sender=WhatsAppStatus, dispatch_uid="eki_whatsapp_django.status"
        )
        checks.register(eki_checks.check_settings, "eki_whatsapp")
        checks.register(eki_checks.check_database, "eki_whatsapp")


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    from .conf import SETTING_PREFIXES, reset_bot

    if setting.startswith(SETTING_PREFIXES):
        reset_bot()
