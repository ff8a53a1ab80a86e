"""Keeps :class:`~eki_whatsapp_django.models.Conversation` rows in step with the message log, and
sends the adapter's Django signals (:mod:`eki_whatsapp_django.signals`).

The store writes log rows with ``create()``, so ``post_save`` sees every message in or out; the
conversation row is updated in the same transaction, and the signals go out after it commits.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Q
from django.dispatch import Signal

from . import signals
from .models import Conversation, WhatsAppLog, WhatsAppStatus

if TYPE_CHECKING:
    from eki_whatsapp import Bot, HandoffState
    from eki_whatsapp.optout import OptOutState

logger = logging.getLogger("eki_whatsapp_django")


def send_signal(signal: Signal, **kwargs: Any) -> None:
    """``send_robust`` with the failures logged: a receiver never breaks the bot."""
    sender = kwargs.pop("sender", Conversation)
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("signal receiver %r failed", receiver, exc_info=result)


def _conversation_of(row: WhatsAppLog, using: str) -> Conversation | None:
    inbound = row.direction == "in"
    user = row.sender if inbound else row.recipient
    if not user:
        return None
    meta_id: str | None = None
    if inbound:
        shown = (row.extra or {}).get("business_number")
        business = shown if isinstance(shown, str) and shown else (row.recipient or "")
        if row.provider == "meta" and row.recipient and row.recipient != business:
            meta_id = row.recipient
    else:
        business = row.sender or ""
        if row.provider == "meta" and row.sender:
            # Meta sends from a phone-number id: file the reply under the number people know.
            known = (
                Conversation.objects.using(using)
                .filter(user=user, meta_phone_number_id=row.sender)
                .values_list("business", flat=True)
                .first()
            )
            business = known or business
    conversation, _ = Conversation.objects.using(using).get_or_create(user=user, business=business)
    if meta_id and conversation.meta_phone_number_id != meta_id:
        conversation.meta_phone_number_id = meta_id
        Conversation.objects.using(using).filter(pk=conversation.pk).update(meta_phone_number_id=meta_id)
    return conversation


def update_conversation(row: WhatsAppLog, using: str = "default") -> Conversation | None:
    """File a new log row in its conversation (last message, unanswered count, window, name)."""
    if row.direction not in ("in", "out") or row.type.startswith("event:"):
        return None
    conversation = _conversation_of(row, using)
    if conversation is None:
        return None
    at: datetime = row.timestamp or row.created_at
    rows = Conversation.objects.using(using).filter(pk=conversation.pk)
    providers = sorted({p for p in conversation.providers.split(",") if p} | {row.provider})
    changes: dict[str, Any] = {"providers": ",".join(providers)}
    if row.direction == "in":
        changes["unanswered"] = F("unanswered") + 1
        name = (row.extra or {}).get("profile_name")
        if isinstance(name, str) and name:
            changes["name"] = name
        if conversation.last_inbound_at is None or at >= conversation.last_inbound_at:
            changes.update(last_inbound_at=at, last_inbound_provider=row.provider)
    elif row.status != "failed":
        changes["unanswered"] = 0
    rows.update(**changes)
    rows.filter(Q(last_message_at__isnull=True) | Q(last_message_at__lte=at)).update(
        last_message_at=at,
        last_text=row.text if row.text is not None else f"[{row.type}]",
        last_direction=row.direction,
    )
    conversation.refresh_from_db(using=using)
    return conversation


def on_log_saved(sender: Any, instance: WhatsAppLog, created: bool, **kwargs: Any) -> None:
    if not created or kwargs.get("raw"):
        return
    using = kwargs.get("using") or "default"
    conversation = update_conversation(instance, using)
    if conversation is None:
        return
    signal = signals.message_received if instance.direction == "in" else signals.message_sent
    transaction.on_commit(
        lambda: send_signal(signal, conversation=conversation, message=instance), using=using
    )


def on_status_saved(sender: Any, instance: WhatsAppStatus, created: bool, **kwargs: Any) -> None:
    if not created or kwargs.get("raw"):
        return
    using = kwargs.get("using") or "default"

    def notify() -> None:
        message = (
            WhatsAppLog.objects.using(using)
            .filter(provider=instance.provider, message_id=instance.message_id)
            .first()
        )
        send_signal(signals.status_changed, sender=WhatsAppStatus, status=instance, message=message)

    transaction.on_commit(notify, using=using)


def conversations_of(user: str) -> list[Conversation | None]:
    """The user's conversations (``[None]`` when none exists yet: the signal still goes out)."""
    return list(Conversation.objects.filter(user=user)) or [None]


def connect_bot(bot: Bot) -> None:
    """Turn the core's handoff and opt-out callbacks into Django signals (once per bot)."""
    if getattr(bot, "_eki_django_signals", False):
        return
    bot._eki_django_signals = True  # type: ignore[attr-defined]

    def requested(state: HandoffState) -> None:
        for conversation in conversations_of(state.user):
            send_signal(
                signals.handoff_requested, conversation=conversation, user=state.user, reason=state.reason
            )

    def changed(state: HandoffState) -> None:
        for conversation in conversations_of(state.user):
            send_signal(
                signals.handoff_changed,
                conversation=conversation,
                user=state.user,
                mode=state.mode,
                staff=state.staff,
                reason=state.reason,
            )

    def opted(user: str, state: OptOutState | None) -> None:
        for conversation in conversations_of(user):
            send_signal(
                signals.opt_out_changed,
                conversation=conversation,
                user=user,
                opted_out=state is not None,
                by=state.by if state is not None else None,
            )

    bot.handoff.on_request(requested)
    bot.handoff.on_change(changed)
    bot.optouts.on_change(opted)
