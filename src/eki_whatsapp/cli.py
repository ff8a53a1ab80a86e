"""``eki-whatsapp`` (also ``python -m eki_whatsapp``): the command line.

Exit codes: 0 success, 1 a check or command failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import __version__
from .bot import Bot
from .events import InboundMessage, StatusUpdate
from .security import meta_signature, twilio_signature
from .settings import Settings
from .store import SQLiteStore
from .webhook import WebhookRequest

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DEMO_APP_SECRET = "demo-app-secret"
DEMO_TWILIO_TOKEN = "demo-twilio-auth-token"
DEMO_URL = "http://127.0.0.1:8000/webhook/whatsapp/"


def _demo_settings(store_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        whatsapp_provider="dual",
        meta_whatsapp_token="demo-meta-token",
        meta_phone_number_id="106540352242922",
        meta_verify_token="demo-verify-token",
        meta_app_secret=DEMO_APP_SECRET,
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=DEMO_TWILIO_TOKEN,
        twilio_whatsapp_number="+14155238886",
        whatsapp_webhook_url=DEMO_URL,
        whatsapp_store_url=f"sqlite:///{store_path}",
        whatsapp_inline_handlers=True,
    )


def _meta_post(body: dict[str, Any]) -> WebhookRequest:
    raw = json.dumps(body, separators=(",", ":")).encode("ascii")
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": meta_signature(DEMO_APP_SECRET, raw),
    }
    return WebhookRequest("POST", DEMO_URL, headers, None, raw)


def _twilio_post(params: dict[str, str]) -> WebhookRequest:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(DEMO_TWILIO_TOKEN, DEMO_URL, params.items()),
    }
    return WebhookRequest("POST", DEMO_URL, headers, None, urlencode(params).encode())


def _meta_text(
    text: str, message_id: str, sender: str = "5215512345678", name: str = "Lucía"
) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": message_id,
                                    "timestamp": "1764028800",
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def cmd_demo(args: argparse.Namespace) -> int:
    """Feed signed Meta and Twilio payloads through the real webhook and show what happened."""
    out = sys.stdout
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(args.store) if args.store else Path(tmp) / "demo.sqlite3"
        settings = _demo_settings(store_path)
        bot = Bot(settings, store=SQLiteStore(store_path), providers={})

        @bot.on_message
        def show_message(message: InboundMessage) -> None:
            print(
                f"  handler <- {message.provider:<6} {message.type:<11} from {message.sender} "
                f"({message.profile_name or '-'}): {message.text!r}",
                file=out,
            )

        @bot.on_status
        def show_status(status: StatusUpdate) -> None:
            print(
                f"  handler <- {status.provider:<6} status {status.status} of {status.message_id}", file=out
            )

        steps: list[tuple[str, WebhookRequest]] = [
            (
                "Meta user writes (JSON, X-Hub-Signature-256)",
                _meta_post(_meta_text("Hola Eki 👋", "wamid.DEMO1")),
            ),
            (
                "Meta retries the same delivery (deduplicated)",
                _meta_post(_meta_text("Hola Eki 👋", "wamid.DEMO1")),
            ),
            (
                "Twilio user writes (form, X-Twilio-Signature)",
                _twilio_post(
                    {
                        "MessageSid": "SM" + "1" * 32,
                        "AccountSid": "AC" + "0" * 32,
                        "From": "whatsapp:+5511987654321",
                        "To": "whatsapp:+14155238886",
                        "WaId": "5511987654321",
                        "ProfileName": "João",
                        "Body": "Quero aprender Python",
                        "NumMedia": "0",
                        "MessageType": "text",
                        "SmsStatus": "received",
                    }
                ),
            ),
            (
                "Twilio status callback",
                _twilio_post(
                    {
                        "MessageSid": "SM" + "2" * 32,
                        "MessageStatus": "delivered",
                        "To": "whatsapp:+5511987654321",
                    }
                ),
            ),
            ("A forged Meta post (bad signature) is refused", _forged()),
        ]
        for title, request in steps:
            print(f"\n▶ {title}", file=out)
            response = bot.handle(request)
            print(f"  webhook -> {response.status} {response.body[:60].decode(errors='replace')!r}", file=out)
        print("\nMessage log:", file=out)
        for row in reversed(bot.store.list_log()):
            print(
                f"  #{row.id} {row.direction:<3} {row.provider:<6} {row.type:<6} {row.user or '-':<15} "
                f"{row.status or '-':<9} {row.text!r}",
                file=out,
            )
        bot.close()
    return EXIT_OK


def _forged() -> WebhookRequest:
    request = _meta_post(_meta_text("forged", "wamid.FORGED"))
    headers = dict(request.headers)
    headers["x-hub-signature-256"] = "sha256=" + "0" * 64
    return WebhookRequest("POST", DEMO_URL, headers, None, request.body)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eki-whatsapp", description="WhatsApp bots on Meta Cloud API and Twilio at once."
    )
    parser.add_argument("--version", action="version", version=f"eki-whatsapp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the offline demo (no accounts needed)")
    demo.add_argument("--store", help="SQLite file to keep the demo's log (default: a temporary file)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
