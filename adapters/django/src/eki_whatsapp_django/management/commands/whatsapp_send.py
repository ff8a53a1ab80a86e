"""``python manage.py whatsapp_send --to 5511987654321 --text "Hello" [--provider meta|twilio]``.

Sends through the project's bot, so the routing policy, the 24-hour window and the log apply as
for any other message. Outside the window a free-form text fails with the reason. The output says
which provider sent it and why (the routing reason recorded in the log, as ``eki-whatsapp send``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from eki_whatsapp import EkiWhatsAppError

from ...conf import get_bot


class Command(BaseCommand):
    """Send one WhatsApp text message."""

    help = "Send a WhatsApp text message through the project's bot (logged like any other)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, help="the user's number (E.164, e.g. +5511987654321)")
        parser.add_argument("--text", required=True, help="the message text")
        parser.add_argument(
            "--provider", choices=("meta", "twilio"), help="send with this provider (default: the policy)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bot = get_bot()
        try:
            receipt = bot.send(options["to"], options["text"], provider=options["provider"])
        except EkiWhatsAppError as exc:
            raise CommandError(str(exc)) from None
        row = bot.store.get_message(receipt.provider, receipt.message_id)
        self.stdout.write(
            f"sent with {receipt.provider}: {receipt.message_id} ({receipt.status}, "
            f"reason {row.reason if row and row.reason else '-'}, attempts {receipt.attempts})"
        )
