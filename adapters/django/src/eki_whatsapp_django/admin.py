"""The admin: conversations (the support console, :mod:`eki_whatsapp_django.console`) at
``/admin/eki_whatsapp_django/conversation/`` and the message log at
``/admin/eki_whatsapp_django/whatsapplog/``, read-only.

Log rows are written by the bot; editing them would only falsify the log, so every field is
read-only and nothing can be added (deleting old rows stays possible).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from eki_whatsapp.conversations import e164, explain_error

from .console import ConversationAdmin, language, local_time
from .models import Conversation, WhatsAppLedger, WhatsAppLog, WhatsAppOutbox, WhatsAppStatus, WhatsAppUsage

admin.site.register(Conversation, ConversationAdmin)


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

    # Narrow columns so the text, status and error fit at 1280 px.
    list_display = (
        "when",
        "arrow",
        "provider",
        "user_number",
        "business_number",
        "short_text",
        "status",
        "error_explained",
    )
    list_display_links = ("when",)
    list_filter = ("provider", "direction", "status", "type", "created_at")
    search_fields = ("sender", "recipient", "text", "message_id")
    list_per_page = 50
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("direction", "provider", "type", "message_id", "sender", "recipient", "text")}),
        (
            _("Delivery"),
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
        (_("Times"), {"fields": ("timestamp", "created_at", "updated_at")}),
        (_("Raw data"), {"fields": ("raw_json", "extra_json")}),
    )
    # The log is a record: every field shown is read-only.
    readonly_fields = tuple(flatten_fieldsets(fieldsets))

    @admin.display(description=_("time"), ordering="created_at")
    def when(self, obj: WhatsAppLog) -> str:
        return local_time(obj.timestamp or obj.created_at)

    @admin.display(description="⇄", ordering="direction")
    def arrow(self, obj: WhatsAppLog) -> str:
        return "→" if obj.direction == "out" else "←"

    @admin.display(description=_("user"))
    def user_number(self, obj: WhatsAppLog) -> str:
        return e164(obj.user)

    @admin.display(description=_("business number"))
    def business_number(self, obj: WhatsAppLog) -> str:
        side = obj.recipient if obj.direction == "in" else obj.sender
        shown = (obj.extra or {}).get("business_number")
        if isinstance(shown, str) and shown:
            return e164(shown)
        if obj.provider == "meta" and side:
            # Meta's replies are sent from a phone-number id: show the number people know.
            known = (
                Conversation.objects.filter(meta_phone_number_id=side)
                .values_list("business", flat=True)
                .first()
            )
            return e164(known or side)
        return e164(side)

    @admin.display(description=_("text"))
    def short_text(self, obj: WhatsAppLog) -> str:
        return Truncator(obj.text or "").chars(40)

    @admin.display(description=_("error"), ordering="error_code")
    def error_explained(self, obj: WhatsAppLog) -> str:
        if obj.status not in ("failed", "undelivered") and not obj.error_code:
            return ""
        text = explain_error(
            obj.error_code, error=(obj.extra or {}).get("error"), language=language(), status=obj.status
        )
        return Truncator(text or "").chars(70)

    @admin.display(description=_("raw"))
    def raw_json(self, obj: WhatsAppLog) -> SafeString:
        return pretty_json(obj.raw)

    @admin.display(description=_("extra"))
    def extra_json(self, obj: WhatsAppLog) -> SafeString:
        return pretty_json(obj.extra)

    @admin.display(description=_("statuses received"))
    def status_history(self, obj: WhatsAppLog) -> str:
        if not obj.message_id:
            return "—"
        rows = WhatsAppStatus.objects.filter(provider=obj.provider, message_id=obj.message_id).order_by(
            "timestamp", "id"
        )
        lines = [
            f"{local_time(r.timestamp)} {r.status}" + (f" (error {r.error_code})" if r.error_code else "")
            for r in rows
        ]
        return "; ".join(lines) or "—"


@admin.register(WhatsAppStatus)
class WhatsAppStatusAdmin(ReadOnlyAdmin):
    """Every status received, as received."""

    list_display = ("when", "provider", "recipient", "message_link", "status", "error_code", "category")
    list_filter = ("provider", "status")
    search_fields = ("message_id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WhatsAppStatus]:
        rows = WhatsAppLog.objects.filter(provider=OuterRef("provider"), message_id=OuterRef("message_id"))
        queryset: QuerySet[WhatsAppStatus] = (
            super()
            .get_queryset(request)
            .annotate(
                log_id=Subquery(rows.values("pk")[:1]),
                log_recipient=Subquery(rows.values("recipient")[:1]),
            )
        )
        return queryset

    @admin.display(description=_("time"), ordering="timestamp")
    def when(self, obj: WhatsAppStatus) -> str:
        return local_time(obj.timestamp)

    @admin.display(description=_("recipient"))
    def recipient(self, obj: WhatsAppStatus) -> str:
        return e164(getattr(obj, "log_recipient", None)) or "—"

    @admin.display(description=_("message"), ordering="message_id")
    def message_link(self, obj: WhatsAppStatus) -> SafeString | str:
        log_id = getattr(obj, "log_id", None)
        if log_id is None:
            return obj.message_id
        url = reverse("admin:eki_whatsapp_django_whatsapplog_change", args=[log_id])
        return format_html('<a href="{}">{}</a>', url, Truncator(obj.message_id).chars(32))

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

    @admin.display(description=_("raw"))
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


@admin.register(WhatsAppOutbox)
class WhatsAppOutboxAdmin(ReadOnlyAdmin):
    """Sends waiting in the outbox, and how the others ended (``eki-whatsapp retry o<n>`` sends
    one now; docs/deployment.md, "The outbox")."""

    list_display = (
        "created_at",
        "outbox_id",
        "recipient",
        "state",
        "attempts",
        "next_attempt_at",
        "expires_at",
        "last_error",
    )
    list_filter = ("state", "provider")
    search_fields = ("recipient", "correlation")
    ordering = ("-id",)

    @admin.display(description="id")
    def outbox_id(self, obj: WhatsAppOutbox) -> str:
        return f"o{obj.pk}"
