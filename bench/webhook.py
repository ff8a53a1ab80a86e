"""Per-event cost of ``Bot.handle`` next to the floor of any verified webhook handler.

Measures, in one run:
* the library: ``Bot.handle`` on the docs/wire.md §3.5 text body and on a §3.6 status body
  (signature on, memory store, inline, no handler) — every request a new message id, so the
  dedup path is the real "new message" one;
* the floor: ``json.loads`` + HMAC-SHA256 check of the same bytes.

Both are timed the way ``timeit`` times code: best of 5 rounds, garbage collection off inside the
timed loop (a collection that happens to fall in one side's loop is noise, not its cost).

Prints both, the ratio, the SQLite-store figure, and the last line
``webhook: <ratio>x floor (target <= 3.0x) OK|BELOW``; exits 1 when above target.

Usage: ``python bench/webhook.py [N]``
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eki_whatsapp import Bot, MemoryStore, Settings, SQLiteStore, WebhookRequest
from eki_whatsapp.security import meta_signature

SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"
TARGET = 3.0

TEXT = {
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
                        "contacts": [
                            {
                                "profile": {"name": "Sheena Nelson"},
                                "wa_id": "16505551234",
                                "user_id": "US.13491208655302741918",
                            }
                        ],
                        "messages": [
                            {
                                "from": "16505551234",
                                "from_user_id": "US.13491208655302741918",
                                "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUFCQ0RFRjAxMjM0NTY3ODlBQgA=",
                                "timestamp": "1749416383",
                                "type": "text",
                                "text": {"body": "Does it come in another color?"},
                            }
                        ],
                    },
                }
            ],
        }
    ],
}
STATUS = {
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
                        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
                        "statuses": [
                            {
                                "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
                                "status": "delivered",
                                "timestamp": "1749416390",
                                "recipient_id": "16505551234",
                                "pricing": {
                                    "billable": True,
                                    "pricing_model": "PMP",
                                    "category": "utility",
                                    "type": "regular",
                                },
                            }
                        ],
                    },
                }
            ],
        }
    ],
}


def bodies(template: dict[str, Any], key: str, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        doc = json.loads(json.dumps(template))
        value = doc["entry"][0]["changes"][0]["value"]
        value[key][0]["id"] = f"wamid.BENCH{key}{i:08d}"
        value[key][0]["timestamp"] = str(1749416383 + i)  # every event its own second: no cache help
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


def requests(raw: list[bytes]) -> list[WebhookRequest]:
    return [
        WebhookRequest(
            "POST",
            "https://bot.example.com/webhook",
            {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(SECRET, b)},
            None,
            b,
        )
        for b in raw
    ]


def timed(fn: Any) -> Any:
    """Time like ``timeit`` does: garbage collection off during the timed loop (for both sides)."""

    def run(*args: Any) -> float:
        gc.collect()
        gc.disable()
        try:
            return float(fn(*args))
        finally:
            gc.enable()

    return run


@timed
def floor(reqs: list[WebhookRequest]) -> float:
    key = SECRET.encode()
    start = time.perf_counter()
    for r in reqs:
        expected = "sha256=" + hmac.new(key, r.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, r.headers["x-hub-signature-256"]):
            raise SystemExit("floor: bad signature")
        json.loads(r.body)
    return (time.perf_counter() - start) / len(reqs)


@timed
def library(bot: Bot, reqs: list[WebhookRequest]) -> float:
    start = time.perf_counter()
    for r in reqs:
        if bot.handle(r).status != 200:
            raise SystemExit("library: request refused")
    return (time.perf_counter() - start) / len(reqs)


def best_of(fn: Any, *args: Any, rounds: int = 5) -> float:
    return min(fn(*args) for _ in range(rounds))


def new_bot(store: Any) -> Bot:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, whatsapp_provider="meta", meta_whatsapp_token="t", meta_phone_number_id="106540352242922",
        meta_app_secret=SECRET, whatsapp_store_url="memory://",
    )  # fmt: skip
    return Bot(settings, store=store, providers={}, inline=True)


def measure(kind: str, template: dict[str, Any], key: str, n: int) -> tuple[float, float, float]:
    reqs_per_round = [requests(bodies(template, key, n)) for _ in range(5)]
    floor_t = min(floor(r) for r in reqs_per_round)
    lib_times = []
    for reqs in reqs_per_round:  # a fresh store each round, every message new
        bot = new_bot(MemoryStore())
        gc.collect()
        lib_times.append(library(bot, reqs))
    lib_t = min(lib_times)
    with tempfile.TemporaryDirectory() as tmp:
        bot = new_bot(SQLiteStore(Path(tmp) / "bench.sqlite3"))
        sqlite_t = library(bot, reqs_per_round[0])
        bot.store.close()
    print(
        f"{kind:>6}: floor {floor_t * 1e6:7.1f} us/event | Bot.handle (memory) {lib_t * 1e6:7.1f} us/event "
        f"| ratio {lib_t / floor_t:4.2f}x | Bot.handle (SQLite file) {sqlite_t * 1e6:7.1f} us/event"
    )
    return floor_t, lib_t, sqlite_t


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    f1, l1, _ = measure("text", TEXT, "messages", n)
    f2, l2, _ = measure("status", STATUS, "statuses", n)
    ratio = max(l1 / f1, l2 / f2)
    ok = ratio <= TARGET
    print(f"webhook: {ratio:.2f}x floor (target <= {TARGET:.1f}x) {'OK' if ok else 'BELOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
