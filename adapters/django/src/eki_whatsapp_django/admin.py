"""The admin: the message log at ``/admin/eki_whatsapp_django/whatsapplog/``, read-only.

Rows are written by the bot; editing them would only falsify the log, so every field is
read-only and nothing can be added (deleting old rows stays possible).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from .models import WhatsAppLedger, WhatsAppLog, WhatsAppStatus, WhatsAppUsage


def pretty_json(value: Any) -> SafeString:
    """JSON indented in a ``<pre>`` block, HTML-escaped."""
    if value in (None, {}, []):
        return format_html("<span>{}</span>", "—")
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Viewing and deleting only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(WhatsAppLog)
class WhatsAppLogAdmin(ReadOnlyAdmin):
    """The message log: filters by provider, direction, status and type; search by number and text."""

    list_display = (
        "created_at",
        "direction",
        "provider",
        "type",
        "sender",
        "recipient",
        "short_text",
        "status",
        "error_code",
    )
    list_filter = ("provider", "direction", "status", "type", "created_at")
    search_fields = ("sender", "recipient", "text", "message_id")
    list_per_page = 50
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("direction", "provider", "type", "message_id", "sender", "recipient", "text")}),
        (
            "Delivery",
            {
                "fields": (
                    "status",
                    "error_code",
                    "error_message",
                    "status_history",
                    "reason",
                    "category",
                    "attempts",
                )
            },
        ),
        ("Times", {"fields": ("timestamp", "created_at", "updated_at")}),
        ("Raw data", {"fields": ("raw_json", "extra_json")}),
    )
    readonly_fields = (
        "direction",
        "provider",
        "type",
        "message_id",
        "sender",
        "recipient",
        "text",
        "status",
        "error_code",
        "error_message",
        "status_history",
        "reason",
        "category",
        "attempts",
        "timestamp",
        "created_at",
        "updated_at",
        "raw_json",
        "extra_json",
    )

    @admin.display(description="text")
    def short_text(self, obj: WhatsAppLog) -> str:
        return Truncator(obj.text or "").chars(60)

    @admin.display(description="raw")
    def raw_json(self, obj: WhatsAppLog) -> SafeString:
        return pretty_json(obj.raw)

    @admin.display(description="extra")
    def extra_json(self, obj: WhatsAppLog) -> SafeString:
        return pretty_json(obj.extra)

    @admin.display(description="statuses received")
    def status_history(self, obj: WhatsAppLog) -> str:
        if not obj.message_id:
            return "—"
        rows = WhatsAppStatus.objects.filter(provider=obj.provider, message_id=obj.message_id).order_by(
            "timestamp", "id"
        )
        lines = [
            f"{r.timestamp:%Y-%m-%d %H:%M:%S} {r.status}"
            + (f" (error {r.error_code})" if r.error_code else "")
            for r in rows
        ]
        return "; ".join(lines) or "—"


@admin.register(WhatsAppStatus)
class WhatsAppStatusAdmin(ReadOnlyAdmin):
    """Every status received, as received."""

    list_display = ("timestamp", "provider", "message_id", "status", "error_code", "category")
    list_filter = ("provider", "status")
    search_fields = ("message_id",)
    readonly_fields = (
        "provider",
        "message_id",
        "status",
        "timestamp",
        "error_code",
        "error_message",
        "category",
        "raw_json",
    )
    exclude = ("raw",)

    @admin.display(description="raw")
    def raw_json(self, obj: WhatsAppStatus) -> SafeString:
        return pretty_json(obj.raw)


@admin.register(WhatsAppLedger)
class WhatsAppLedgerAdmin(ReadOnlyAdmin):
    """The cost ledger."""

    list_display = ("at", "provider", "message_id", "source", "category", "market", "amount", "currency")
    list_filter = ("provider", "source", "category", "month")
    search_fields = ("message_id", "user")


@admin.register(WhatsAppUsage)
class WhatsAppUsageAdmin(ReadOnlyAdmin):
    """Model usage of the agent."""

    list_display = ("at", "user", "model", "prompt_tokens", "completion_tokens", "cached_tokens", "cost")
    list_filter = ("model",)
    search_fields = ("user",)
