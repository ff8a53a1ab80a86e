"""Django signals, so other apps react to WhatsApp traffic without writing bot handlers::

    from django.dispatch import receiver
    from eki_whatsapp_django.signals import handoff_requested

    @receiver(handoff_requested)
    def tell_staff(sender, conversation, reason, **kwargs):
        send_mail("WhatsApp: a person is needed", f"{conversation}: {reason}", None, ["soporte@example.com"])

Every signal is sent after the database transaction that wrote the row commits, with
``send_robust`` (a failing receiver is logged and never breaks the webhook). ``sender`` is the
model class (:class:`~eki_whatsapp_django.models.Conversation` for conversation signals).

* ``message_received(conversation, message)`` — a user's message was logged (``message`` is the
  :class:`~eki_whatsapp_django.models.WhatsAppLog` row); sent while staff have the conversation too.
* ``message_sent(conversation, message)`` — a message to a user was logged (sent or failed).
* ``status_changed(status, message)`` — a status arrived (``status`` is the
  :class:`~eki_whatsapp_django.models.WhatsAppStatus` row, ``message`` the log row or ``None``).
* ``handoff_requested(conversation, user, reason)`` — the bot or the agent asked for a person.
* ``handoff_changed(conversation, user, mode, staff, reason)`` — taken over (``mode="human"``)
  or handed back (``mode="bot"``; ``reason="idle"`` for the automatic hand-back).
* ``opt_out_changed(conversation, user, opted_out, by)`` — a user opted out/in or was (un)blocked.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "handoff_changed",
    "handoff_requested",
    "message_received",
    "message_sent",
    "opt_out_changed",
    "status_changed",
]

message_received = Signal()
message_sent = Signal()
status_changed = Signal()
handoff_requested = Signal()
handoff_changed = Signal()
opt_out_changed = Signal()
