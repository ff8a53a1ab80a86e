"""The support console in the Django admin: conversations at
``admin/eki_whatsapp_django/conversation/``, a chat-like page per conversation, take over / reply /
hand back, block / unblock, and an authenticated media download.

Every action goes through the core (:attr:`Bot.handoff`, :attr:`Bot.optouts`, the router), so the
admin does exactly what a Flask console or a script would do. Viewing needs the ``view`` permission
of :class:`~eki_whatsapp_django.models.Conversation`; acting needs ``change``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from eki_whatsapp import EkiWhatsAppError
from eki_whatsapp.conversations import e164, explain_error, media_refs, search_digits
from eki_whatsapp.messages import Template, Text
from eki_whatsapp.providers.base import ProviderError

from .conf import get_bot
from .models import Conversation, WhatsAppLog

#: Django setting: templates offered when the 24-hour window is closed, as ``Template`` objects or
#: dicts ``{"name": ..., "language": ..., "content_sid": ...}`` (the fallback template is added).
TEMPLATES_SETTING = "EKI_WHATSAPP_CONSOLE_TEMPLATES"

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_TICKS = {
    "accepted": ("🕓", gettext_lazy("accepted by the provider")),
    "queued": ("🕓", gettext_lazy("queued")),
    "sending": ("🕓", gettext_lazy("sending")),
    "sent": ("✓", gettext_lazy("sent")),
    "delivered": ("✓✓", gettext_lazy("delivered")),
    "read": ("✓✓", gettext_lazy("read")),
    "played": ("✓✓", gettext_lazy("played")),
    "failed": ("✗", gettext_lazy("failed")),
    "undelivered": ("✗", gettext_lazy("not delivered")),
}


def local_time(value: Any) -> str:
    """A time with seconds, in the project's time zone (a burst must not read as one minute)."""
    if value is None:
        return "—"
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return str(value.strftime(TIME_FORMAT))


def language() -> str:
    return (get_language() or "en").split("-")[0]


def console_templates() -> list[Template]:
    """The templates of the picker: ``EKI_WHATSAPP_CONSOLE_TEMPLATES`` plus the fallback template."""
    found: list[Template] = []
    for item in getattr(django_settings, TEMPLATES_SETTING, ()) or ():
        if isinstance(item, Template):
            found.append(item)
        elif isinstance(item, dict):
            found.append(
                Template(item["name"], item.get("language", "es"), content_sid=item.get("content_sid"))
            )
    fallback = get_bot().router.fallback_for("", None)
    if isinstance(fallback, Template) and all(t.name != fallback.name for t in found):
        found.append(fallback)
    return found


def staff_name(request: HttpRequest) -> str:
    user = request.user
    return str(user.get_username()) if user.is_authenticated else "staff"


def conversation_rows(conversation: Conversation, limit: int = 300) -> list[WhatsAppLog]:
    """The log rows of a conversation, oldest first (the latest ``limit``)."""
    user = conversation.user
    ids = {
        conversation.business,
        *([conversation.meta_phone_number_id] if conversation.meta_phone_number_id else []),
    }
    rows = (
        WhatsAppLog.objects.filter(
            Q(direction="in", sender=user, recipient__in=ids)
            | Q(direction="out", recipient=user, sender__in=ids)
        )
        .exclude(type__startswith="event:")
        .order_by("-timestamp", "-id")[:limit]
    )
    return list(reversed(list(rows)))


@dataclass
class Bubble:
    """One message as the chat page shows it."""

    row: WhatsAppLog
    outgoing: bool
    time: str
    text: str
    tick: str
    tick_title: str
    error: str | None
    staff: str | None
    media: list[tuple[str, str, bool]]  # (url, label, is_image)
    log_url: str


def bubble(row: WhatsAppLog, conversation: Conversation) -> Bubble:
    extra = row.extra or {}
    tick, title = _TICKS.get(row.status or "", ("", row.status or ""))
    error = None
    if row.status in ("failed", "undelivered") or row.error_code:
        error = explain_error(
            row.error_code, error=extra.get("error"), language=language(), status=row.status
        )
    media: list[tuple[str, str, bool]] = []
    if row.direction == "in":
        for index, ref in enumerate(media_refs(_entry(row))):
            url = reverse(
                "admin:eki_whatsapp_django_conversation_media", args=[conversation.pk, row.pk, index]
            )
            mime = ref.mime_type or ""
            media.append((url, ref.filename or mime or row.type, mime.startswith("image/")))
    staff = extra.get("staff")
    return Bubble(
        row=row,
        outgoing=row.direction == "out",
        time=local_time(row.timestamp or row.created_at),
        text=row.text or ("" if media else f"[{row.type}]"),
        tick=tick if row.direction == "out" else "",
        tick_title=str(title),
        error=error,
        staff=staff if isinstance(staff, str) else None,
        media=media,
        log_url=reverse("admin:eki_whatsapp_django_whatsapplog_change", args=[row.pk]),
    )


def _entry(row: WhatsAppLog) -> Any:
    from .store import DjangoStore

    return DjangoStore._entry(row)


def handoff_label(mode: str, opted_out: bool) -> str:
    if opted_out:
        return _("opted out")
    return {"human": _("human"), "requested": _("needs a person")}.get(mode, _("bot"))


class ConversationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Conversations: one row per user and business number; the page of one is a chat."""

    list_display = (
        "who",
        "number",
        "provider_list",
        "last_message",
        "last_time",
        "window",
        "unanswered",
        "state",
    )
    list_display_links = ("who", "number")
    search_fields = ("name",)
    search_help_text = gettext_lazy("Number (with or without +, spaces), name or message text.")
    list_per_page = 50
    show_full_result_count = False
    ordering = ("-last_message_at",)
    actions = ("take_over", "hand_back", "block", "unblock")

    class Media:
        css = {"all": ("eki_whatsapp_django/console.css",)}

    # --- permissions: rows are written by the bot -------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # --- list ---------------------------------------------------------------------------------------
    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Conversation], search_term: str
    ) -> tuple[QuerySet[Conversation], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(name__icontains=term)
        digits = search_digits(term)
        if digits:
            match |= Q(user__contains=digits)
        senders = WhatsAppLog.objects.filter(direction="in", text__icontains=term).values("sender")
        recipients = WhatsAppLog.objects.filter(direction="out", text__icontains=term).values("recipient")
        match |= Q(user__in=senders) | Q(user__in=recipients)
        return queryset.filter(match), False

    @admin.display(description=gettext_lazy("name"), ordering="name")
    def who(self, obj: Conversation) -> str:
        return obj.name or "—"

    @admin.display(description=gettext_lazy("number"), ordering="user")
    def number(self, obj: Conversation) -> str:
        return e164(obj.user)

    @admin.display(description=gettext_lazy("provider"), ordering="providers")
    def provider_list(self, obj: Conversation) -> str:
        return "+".join(p for p in obj.providers.split(",") if p)

    @admin.display(description=gettext_lazy("last message"))
    def last_message(self, obj: Conversation) -> str:
        arrow = "→ " if obj.last_direction == "out" else ""
        return arrow + Truncator(obj.last_text or "").chars(40)

    @admin.display(description=gettext_lazy("time"), ordering="last_message_at")
    def last_time(self, obj: Conversation) -> str:
        return local_time(obj.last_message_at)

    @admin.display(description=gettext_lazy("24-hour window"), ordering="last_inbound_at")
    def window(self, obj: Conversation) -> SafeString:
        until = obj.window_until
        if until is None or until <= timezone.now():
            return format_html('<span class="eki-closed">{}</span>', _("closed"))
        return format_html(
            '<span class="eki-open" title="{}">{}</span>',
            local_time(until),
            _("open until %(time)s") % {"time": local_time(until)[11:]},
        )

    @admin.display(description=gettext_lazy("state"))
    def state(self, obj: Conversation) -> SafeString:
        bot = get_bot()
        mode = bot.handoff.state(obj.user).mode
        opted_out = bot.optouts.is_opted_out(obj.user)
        return format_html('<span class="eki-state eki-{}">{}</span>', mode, handoff_label(mode, opted_out))

    # --- bulk actions --------------------------------------------------------------------------------
    @admin.action(description=gettext_lazy("Take over (the bot stops answering)"), permissions=["change"])
    def take_over(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            get_bot().handoff.take_over(conversation.user, staff=staff_name(request))
        self.message_user(request, _("Taken over: %(count)d.") % {"count": queryset.count()})

    @admin.action(description=gettext_lazy("Hand back to the bot"), permissions=["change"])
    def hand_back(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            get_bot().handoff.hand_back(conversation.user, staff=staff_name(request))
        self.message_user(request, _("Handed back: %(count)d.") % {"count": queryset.count()})

    @admin.action(description=gettext_lazy("Block (no more messages)"), permissions=["change"])
    def block(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            get_bot().optouts.block(conversation.user, by=f"staff:{staff_name(request)}")
        self.message_user(request, _("Blocked: %(count)d.") % {"count": queryset.count()})

    @admin.action(description=gettext_lazy("Unblock"), permissions=["change"])
    def unblock(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            get_bot().optouts.unblock(conversation.user)
        self.message_user(request, _("Unblocked: %(count)d.") % {"count": queryset.count()})

    # --- the chat page -------------------------------------------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        name = "eki_whatsapp_django_conversation"
        own = [
            path("<int:pk>/act/<str:action>/", wrap(require_POST(self.act_view)), name=f"{name}_act"),
            path(
                "<int:pk>/media/<int:log_id>/<int:index>/",
                wrap(self.media_view),
                name=f"{name}_media",
            ),
        ]
        return own + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        conversation = get_object_or_404(Conversation, pk=object_id)
        if not self.has_view_or_change_permission(request, conversation):
            raise PermissionDenied
        bot = get_bot()
        state = bot.handoff.state(conversation.user)
        optout = bot.optouts.state(conversation.user)
        until = conversation.window_until
        window_open = until is not None and until > timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": conversation.name or e164(conversation.user),
            "conversation": conversation,
            "number": e164(conversation.user),
            "business": e164(conversation.business),
            "bubbles": [bubble(row, conversation) for row in conversation_rows(conversation)],
            "handoff": state,
            "handoff_label": handoff_label(state.mode, optout is not None),
            "optout": optout,
            "window_open": window_open,
            "window_until": local_time(until) if until else None,
            "templates": console_templates(),
            "can_act": self.has_change_permission(request, conversation),
            "changelist_url": reverse("admin:eki_whatsapp_django_conversation_changelist"),
            "log_url": reverse("admin:eki_whatsapp_django_whatsapplog_changelist"),
        }
        context["urls"] = {
            action: reverse("admin:eki_whatsapp_django_conversation_act", args=[conversation.pk, action])
            for action in ("take", "release", "reply", "block", "unblock")
        }
        return TemplateResponse(request, "admin/eki_whatsapp_django/conversation/chat.html", context)

    def act_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponseBase:
        conversation = get_object_or_404(Conversation, pk=pk)
        if not self.has_change_permission(request, conversation):
            raise PermissionDenied
        bot = get_bot()
        staff = staff_name(request)
        user = conversation.user
        if action == "take":
            bot.handoff.take_over(user, staff=staff)
            messages.success(request, _("You have the conversation: the bot will not answer."))
        elif action == "release":
            bot.handoff.hand_back(user, staff=staff)
            messages.success(request, _("The bot answers this conversation again."))
        elif action == "block":
            bot.optouts.block(user, by=f"staff:{staff}")
            messages.success(request, _("Blocked: no message will be sent to this user."))
        elif action == "unblock":
            bot.optouts.unblock(user)
            messages.success(request, _("Unblocked."))
        elif action == "reply":
            self._reply(request, conversation, staff)
        else:
            raise PermissionDenied
        return HttpResponseRedirect(
            reverse("admin:eki_whatsapp_django_conversation_change", args=[conversation.pk])
        )

    def _reply(self, request: HttpRequest, conversation: Conversation, staff: str) -> None:
        text = (request.POST.get("text") or "").strip()
        template_name = (request.POST.get("template") or "").strip()
        message: Text | Template
        if template_name:
            chosen = [t for t in console_templates() if t.name == template_name]
            if not chosen:
                messages.error(request, _("Unknown template."))
                return
            message = chosen[0]
        elif text:
            message = Text(text)
        else:
            messages.error(request, _("Write a message first."))
            return
        provider = conversation.last_inbound_provider
        if provider not in get_bot().providers:
            provider = None
        try:
            get_bot().handoff.reply(conversation.user, message, staff=staff, provider=provider)
        except (ProviderError, EkiWhatsAppError) as exc:
            code = getattr(exc, "code", None)
            explained = explain_error(code, error=type(exc).__name__, language=language(), status="failed")
            messages.error(request, _("Not sent: %(why)s") % {"why": explained or type(exc).__name__})
        else:
            messages.success(request, _("Sent."))

    def media_view(self, request: HttpRequest, pk: int, log_id: int, index: int) -> HttpResponse:
        """Media of an inbound message, fetched by the server with the provider's credentials:
        the browser never sees a provider URL or a token."""
        conversation = get_object_or_404(Conversation, pk=pk)
        if not self.has_view_or_change_permission(request, conversation):
            raise PermissionDenied
        row = get_object_or_404(WhatsAppLog, pk=log_id, direction="in", sender=conversation.user)
        refs: Sequence[Any] = media_refs(_entry(row))
        if index >= len(refs):
            return HttpResponse(status=404)
        ref = refs[index]
        provider = get_bot().providers.get(row.provider)
        if provider is None:
            return HttpResponse(status=404)
        try:
            data = provider.download_media(ref)
        except ProviderError as exc:
            return HttpResponse(
                _("The provider did not give the file: %(error)s") % {"error": type(exc).__name__},
                status=502,
                content_type="text/plain; charset=utf-8",
            )
        mime = ref.mime_type or "application/octet-stream"
        response = HttpResponse(data, content_type=mime)
        inline = mime.startswith(("image/", "audio/", "video/")) and "svg" not in mime
        filename = (ref.filename or f"whatsapp-{row.pk}-{index}").replace('"', "")
        response["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{filename}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        response["Cache-Control"] = "private, max-age=3600"
        return response


__all__ = ["ConversationAdmin", "console_templates", "conversation_rows", "local_time"]
