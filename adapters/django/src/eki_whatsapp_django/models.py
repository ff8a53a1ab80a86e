"""The tables behind :class:`~eki_whatsapp_django.store.DjangoStore`.

:class:`WhatsAppLog` is the message log (browse it in the admin); the other models hold what the
bot must remember: every status received, the users' 24-hour windows, agent memory, model usage,
the cost ledger and a small key-value space. Dedup is a database unique constraint everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

#: How long after the user's last message a free-form reply may be sent.
WINDOW = timedelta(hours=24)


class WhatsAppLog(models.Model):
    """One message in or out (or another webhook notification), with its latest status."""

    DIRECTIONS = (("in", "in"), ("out", "out"))

    direction: models.CharField[str, str] = models.CharField(max_length=3, choices=DIRECTIONS)
    provider: models.CharField[str, str] = models.CharField(max_length=16)
    #: wamid (Meta) or MessageSid (Twilio); unique per provider (the dedup key).
    message_id: models.CharField[str | None, str | None] = models.CharField(
        max_length=255, null=True, blank=True
    )
    sender: models.CharField[str | None, str | None] = models.CharField(max_length=128, null=True, blank=True)
    recipient: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    type: models.CharField[str, str] = models.CharField(max_length=100)
    text: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    status: models.CharField[str | None, str | None] = models.CharField(max_length=32, null=True, blank=True)
    error_code: models.BigIntegerField[int | None, int | None] = models.BigIntegerField(null=True, blank=True)
    error_message: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    raw: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    #: When the provider says it happened.
    timestamp: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    attempts: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    #: Why this provider was used (``reply-channel``, ``failover:ProviderDown``, ...).
    reason: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    category: models.CharField[str | None, str | None] = models.CharField(
        max_length=64, null=True, blank=True
    )
    extra: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)
    #: Durable handling (docs/store.md): ``pending`` → ``handled`` / ``failed`` / ``dead``;
    #: ``None`` when the row carries no work.
    handling: models.CharField[str | None, str | None] = models.CharField(
        max_length=16, null=True, blank=True
    )
    lease_owner: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    lease_until: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    next_attempt_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    last_error: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)

    class Meta:
        verbose_name = _("WhatsApp log entry")
        verbose_name_plural = _("WhatsApp log")
        ordering = ("-id",)
        constraints = (
            # NULL message ids (change events, failed sends) never collide.
            models.UniqueConstraint(fields=("provider", "message_id"), name="eki_whatsapp_log_provider_id"),
        )
        indexes = (
            models.Index(fields=("created_at",), name="eki_whatsapp_log_created"),
            models.Index(fields=("sender",), name="eki_whatsapp_log_sender"),
            models.Index(fields=("recipient",), name="eki_whatsapp_log_recipient"),
            models.Index(fields=("handling",), name="eki_whatsapp_log_handling"),
        )

    def __str__(self) -> str:
        return f"{self.direction} {self.provider} {self.type} {self.message_id or self.pk}"

    @property
    def user(self) -> str | None:
        """The user of the conversation (sender of inbound, recipient of outbound)."""
        return self.sender if self.direction == "in" else self.recipient


class WhatsAppStatus(models.Model):
    """One status event as received (the log row keeps only the highest)."""

    provider: models.CharField[str, str] = models.CharField(max_length=16)
    message_id: models.CharField[str, str] = models.CharField(max_length=255)
    status: models.CharField[str, str] = models.CharField(max_length=32)
    timestamp: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    error_code: models.BigIntegerField[int | None, int | None] = models.BigIntegerField(null=True, blank=True)
    error_message: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    #: The pricing category the provider reported with this status, if any.
    category: models.CharField[str | None, str | None] = models.CharField(
        max_length=64, null=True, blank=True
    )
    raw: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    attempts: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    #: Durable handling (docs/store.md): ``pending`` → ``handled`` / ``failed`` / ``dead``;
    #: ``None`` when the row carries no work.
    handling: models.CharField[str | None, str | None] = models.CharField(
        max_length=16, null=True, blank=True
    )
    lease_owner: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    lease_until: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    next_attempt_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    last_error: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)

    class Meta:
        verbose_name = _("WhatsApp status")
        verbose_name_plural = _("WhatsApp statuses")
        constraints = (
            models.UniqueConstraint(
                fields=("provider", "message_id", "status"), name="eki_whatsapp_status_unique"
            ),
        )
        indexes = (models.Index(fields=("handling",), name="eki_whatsapp_status_handling"),)

    def __str__(self) -> str:
        return f"{self.provider} {self.message_id} {self.status}"


class WhatsAppWindow(models.Model):
    """The user's latest message to a business number: the 24-hour window starts there."""

    provider: models.CharField[str, str] = models.CharField(max_length=16)
    business: models.CharField[str, str] = models.CharField(max_length=128)
    user: models.CharField[str, str] = models.CharField(max_length=128)
    last_inbound_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        verbose_name = _("WhatsApp window")
        constraints = (
            models.UniqueConstraint(
                fields=("provider", "business", "user"), name="eki_whatsapp_window_unique"
            ),
        )

    def __str__(self) -> str:
        return f"{self.provider} {self.user} → {self.business}"


class WhatsAppMemory(models.Model):
    """Agent memory of one conversation (a JSON list of items)."""

    key: models.CharField[str, str] = models.CharField(max_length=255, unique=True)
    items: models.JSONField[Any, Any] = models.JSONField(default=list)
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        verbose_name = _("WhatsApp memory")
        verbose_name_plural = _("WhatsApp memories")

    def __str__(self) -> str:
        return self.key


class WhatsAppUsage(models.Model):
    """Model usage of one agent call."""

    user: models.CharField[str, str] = models.CharField(max_length=128)
    model: models.CharField[str, str] = models.CharField(max_length=128)
    prompt_tokens: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    completion_tokens: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    cached_tokens: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    #: A decimal as text, exact (``None`` when unknown).
    cost: models.CharField[str | None, str | None] = models.CharField(max_length=64, null=True, blank=True)
    at: models.DateTimeField[datetime, datetime] = models.DateTimeField(db_index=True)
    turn_id: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    provider: models.CharField[str | None, str | None] = models.CharField(
        max_length=16, null=True, blank=True
    )

    class Meta:
        verbose_name = _("WhatsApp model usage")
        verbose_name_plural = _("WhatsApp model usage")

    def __str__(self) -> str:
        return f"{self.user} {self.model} {self.at:%Y-%m-%d %H:%M}"


class WhatsAppLedger(models.Model):
    """One priced (or unpriceable) message in the cost ledger."""

    provider: models.CharField[str, str] = models.CharField(max_length=16)
    message_id: models.CharField[str, str] = models.CharField(max_length=255)
    #: ``send`` (estimated when sent) or ``status`` (from the provider's pricing data).
    source: models.CharField[str, str] = models.CharField(max_length=16)
    category: models.CharField[str | None, str | None] = models.CharField(
        max_length=64, null=True, blank=True
    )
    at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    month: models.CharField[str, str] = models.CharField(max_length=7, db_index=True)
    user: models.CharField[str | None, str | None] = models.CharField(max_length=128, null=True, blank=True)
    market: models.CharField[str | None, str | None] = models.CharField(max_length=64, null=True, blank=True)
    pricing_model: models.CharField[str | None, str | None] = models.CharField(
        max_length=32, null=True, blank=True
    )
    billable: models.BooleanField[bool | None, bool | None] = models.BooleanField(null=True, blank=True)
    #: A decimal as text, exact (``None`` when the cost is unknown — never a silent zero).
    amount: models.CharField[str | None, str | None] = models.CharField(max_length=64, null=True, blank=True)
    currency: models.CharField[str, str] = models.CharField(max_length=8, default="USD")
    note: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)

    class Meta:
        verbose_name = _("WhatsApp ledger entry")
        verbose_name_plural = _("WhatsApp ledger")
        constraints = (
            models.UniqueConstraint(
                fields=("provider", "message_id", "source"), name="eki_whatsapp_ledger_unique"
            ),
        )

    def __str__(self) -> str:
        return f"{self.provider} {self.message_id} {self.source}"


class WhatsAppOutbox(models.Model):
    """A send waiting in the outbox (docs/store.md, "Outbox"): ``queued`` (no provider could take
    it) or ``unknown`` (its request may have reached the provider), until ``sent``, ``expired``
    or ``failed``. ``log`` is its row in the message log, rewritten to what finally happened."""

    state: models.CharField[str, str] = models.CharField(max_length=16)
    recipient: models.CharField[str, str] = models.CharField(max_length=128)
    message: models.JSONField[Any, Any] = models.JSONField()
    options: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)
    correlation: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    provider: models.CharField[str | None, str | None] = models.CharField(
        max_length=16, null=True, blank=True
    )
    attempts: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    next_attempt_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    expires_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    lease_owner: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    lease_until: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )
    last_error: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    log_id: models.BigIntegerField[int | None, int | None] = models.BigIntegerField(null=True, blank=True)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        verbose_name = _("WhatsApp outbox send")
        verbose_name_plural = _("WhatsApp outbox")
        indexes = (
            models.Index(fields=("state",), name="eki_whatsapp_outbox_state"),
            models.Index(fields=("correlation",), name="eki_whatsapp_outbox_corr"),
        )

    def __str__(self) -> str:
        return f"o{self.pk} {self.state} to {self.recipient}"


class WhatsAppValue(models.Model):
    """A JSON value in the bot's small key-value space."""

    namespace: models.CharField[str, str] = models.CharField(max_length=128)
    key: models.CharField[str, str] = models.CharField(max_length=255)
    value: models.JSONField[Any, Any] = models.JSONField(null=True)

    class Meta:
        verbose_name = _("WhatsApp value")
        constraints = (
            models.UniqueConstraint(fields=("namespace", "key"), name="eki_whatsapp_value_unique"),
        )

    def __str__(self) -> str:
        return f"{self.namespace}:{self.key}"


class Conversation(models.Model):
    """One conversation per user and business number, kept in step with the log (see
    :mod:`eki_whatsapp_django.sync`). Browse it at ``admin/eki_whatsapp_django/conversation/``.

    Who answers (bot or staff) and opt-outs live in the bot's Store (``bot.handoff``,
    ``bot.optouts``), so every framework and process shares them.
    """

    #: The user: E.164 digits without ``+`` (or a business-scoped user id).
    user: models.CharField[str, str] = models.CharField(_("user"), max_length=128)
    #: The business number as people know it (Meta's display number, not its phone-number id).
    business: models.CharField[str, str] = models.CharField(_("business number"), max_length=128)
    name: models.CharField[str | None, str | None] = models.CharField(
        _("name"), max_length=255, null=True, blank=True
    )
    #: Comma-separated providers the conversation used (``meta``, ``meta,twilio``).
    providers: models.CharField[str, str] = models.CharField(
        _("providers"), max_length=32, default="", blank=True
    )
    #: Meta's phone-number id for this business number (its replies are sent from that id).
    meta_phone_number_id: models.CharField[str | None, str | None] = models.CharField(
        max_length=64, null=True, blank=True
    )
    last_message_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        _("last message at"), null=True, blank=True
    )
    last_text: models.TextField[str | None, str | None] = models.TextField(
        _("last message"), null=True, blank=True
    )
    last_direction: models.CharField[str | None, str | None] = models.CharField(
        max_length=3, null=True, blank=True
    )
    last_inbound_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        _("last message from the user"), null=True, blank=True
    )
    last_inbound_provider: models.CharField[str | None, str | None] = models.CharField(
        max_length=16, null=True, blank=True
    )
    #: Messages from the user since the last message that went out to them.
    unanswered: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(
        _("unanswered"), default=0
    )

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ("-last_message_at",)
        constraints = (
            models.UniqueConstraint(fields=("user", "business"), name="eki_whatsapp_conversation_unique"),
        )
        indexes = (
            models.Index(fields=("last_message_at",), name="eki_whatsapp_conv_last"),
            models.Index(fields=("name",), name="eki_whatsapp_conv_name"),
        )

    def __str__(self) -> str:
        number = f"+{self.user}" if self.user.isdigit() else self.user
        return f"{self.name} ({number})" if self.name else number

    @property
    def window_until(self) -> datetime | None:
        """When the 24-hour window closes (``None``: the user never wrote)."""
        return self.last_inbound_at + WINDOW if self.last_inbound_at else None
