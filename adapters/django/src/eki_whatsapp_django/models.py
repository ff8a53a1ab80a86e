"""The tables behind :class:`~eki_whatsapp_django.store.DjangoStore`.

:class:`WhatsAppLog` is the message log (browse it in the admin); the other models hold what the
bot must remember: every status received, the users' 24-hour windows, agent memory, model usage,
the cost ledger and a small key-value space. Dedup is a database unique constraint everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models


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

    class Meta:
        verbose_name = "WhatsApp log entry"
        verbose_name_plural = "WhatsApp log"
        ordering = ("-id",)
        constraints = (
            # NULL message ids (change events, failed sends) never collide.
            models.UniqueConstraint(fields=("provider", "message_id"), name="eki_whatsapp_log_provider_id"),
        )
        indexes = (
            models.Index(fields=("created_at",), name="eki_whatsapp_log_created"),
            models.Index(fields=("sender",), name="eki_whatsapp_log_sender"),
            models.Index(fields=("recipient",), name="eki_whatsapp_log_recipient"),
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

    class Meta:
        verbose_name = "WhatsApp status"
        verbose_name_plural = "WhatsApp statuses"
        constraints = (
            models.UniqueConstraint(
                fields=("provider", "message_id", "status"), name="eki_whatsapp_status_unique"
            ),
        )

    def __str__(self) -> str:
        return f"{self.provider} {self.message_id} {self.status}"


class WhatsAppWindow(models.Model):
    """The user's latest message to a business number: the 24-hour window starts there."""

    provider: models.CharField[str, str] = models.CharField(max_length=16)
    business: models.CharField[str, str] = models.CharField(max_length=128)
    user: models.CharField[str, str] = models.CharField(max_length=128)
    last_inbound_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        verbose_name = "WhatsApp window"
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
        verbose_name = "WhatsApp memory"
        verbose_name_plural = "WhatsApp memories"

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
        verbose_name = "WhatsApp model usage"
        verbose_name_plural = "WhatsApp model usage"

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
        verbose_name = "WhatsApp ledger entry"
        verbose_name_plural = "WhatsApp ledger"
        constraints = (
            models.UniqueConstraint(
                fields=("provider", "message_id", "source"), name="eki_whatsapp_ledger_unique"
            ),
        )

    def __str__(self) -> str:
        return f"{self.provider} {self.message_id} {self.source}"


class WhatsAppValue(models.Model):
    """A JSON value in the bot's small key-value space."""

    namespace: models.CharField[str, str] = models.CharField(max_length=128)
    key: models.CharField[str, str] = models.CharField(max_length=255)
    value: models.JSONField[Any, Any] = models.JSONField(null=True)

    class Meta:
        verbose_name = "WhatsApp value"
        constraints = (
            models.UniqueConstraint(fields=("namespace", "key"), name="eki_whatsapp_value_unique"),
        )

    def __str__(self) -> str:
        return f"{self.namespace}:{self.key}"
