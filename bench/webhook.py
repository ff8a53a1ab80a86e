"""Per-message cost of the webhook on the configuration users run, next to pywa and the floor.

Measures, interleaved in one run (each round runs every variant once, in a rotating order, on
its own fresh messages; the figure is the median of the per-round ratios):

* **floor**: HMAC-SHA256 check + ``json.loads`` of the body — what any verified handler must do;
* **floor+sql**: the floor plus the two SQLite commits any durable handler makes (the message
  and its pending work before the ack, "handled" after) — what durability costs on this machine;
* **pywa**: ``WhatsApp.webhook_update_validator`` + ``webhook_update_handler`` with a no-op
  message handler and a no-op status handler (pywa builds its typed update and calls them inline);
* **default**: ``Bot(settings)`` as ``eki-whatsapp init`` sets it up — the SQLite file store
  (the default ``WHATSAPP_STORE_URL``), a no-op ``on_message`` / ``on_status`` handler run in the
  background (durable handling: the work is recorded with the log row before the ack, then
  claimed, run and marked handled by a worker thread);
* **memory**: the same bot on ``MemoryStore``.

Every request is a new message (its own id), the ``WebhookRequest`` is built inside the timed loop
from the raw body and headers, and each timed block ends with ``bot.drain()``, so the background
work the messages caused is paid inside the block. The clock is the process's CPU time
(``time.process_time``: every thread of this process, not the time other processes hold a core,
which dominates on a shared machine); wall-clock medians are printed too.

Targets: default ≤ 1.5x pywa for a text message and for a status; memory store ≤ 1.0x pywa.
Last lines ``webhook-text``, ``webhook-status``, ``webhook-memory``: ``<figure> (target <t>)
OK|BELOW``; exit 1 when any is below target.

Usage: ``python bench/webhook.py [--per-round 400] [--rounds 9]`` (needs ``pip install pywa``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import json
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eki_whatsapp import Bot, MemoryStore, Settings, SQLiteStore, WebhookRequest
from eki_whatsapp.security import meta_signature

SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"
URL = "https://bot.example.com/webhook"
PHONE_ID = "106540352242922"

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


def bodies(template: dict[str, Any], key: str, start: int, n: int) -> list[bytes]:
    """``n`` signed-ready bodies, each with a message id never used before in this run."""
    out = []
    for i in range(start, start + n):
        doc = json.loads(json.dumps(template))
        value = doc["entry"][0]["changes"][0]["value"]
        value[key][0]["id"] = f"wamid.BENCH{key}{i:08d}"
        value[key][0]["timestamp"] = str(1749416383 + i)
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


Raw = list[tuple[bytes, str]]  # (body, its X-Hub-Signature-256)


def floor(raw: Raw) -> None:
    key = SECRET.encode()
    for body, signature in raw:
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise SystemExit("floor: bad signature")
        json.loads(body)


def durable_floor(path: Path) -> Callable[[Raw], None]:
    """The floor plus the least any durable handler writes to SQLite (same file settings as the
    store: WAL, synchronous=NORMAL): the message and "to be handled" in one commit before the
    ack, "handled" in a second commit after the handler."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, message_id TEXT UNIQUE, raw TEXT, handling TEXT)")
    key = SECRET.encode()

    def run(raw: Raw) -> None:
        for body, signature in raw:
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                raise SystemExit("floor: bad signature")
            value = json.loads(body)["entry"][0]["changes"][0]["value"]
            item = (value.get("messages") or value.get("statuses"))[0]
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute(
                "INSERT OR IGNORE INTO log (message_id, raw, handling) VALUES (?,?,'pending')",
                (item["id"], body.decode()),
            )
            db.execute("COMMIT")
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE log SET handling='handled' WHERE id=?", (cur.lastrowid,))
            db.execute("COMMIT")

    return run


def new_bot(store: Any) -> Bot:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, whatsapp_provider="meta", meta_whatsapp_token="t", meta_phone_number_id=PHONE_ID,
        meta_app_secret=SECRET, meta_verify_token="v",
    )  # fmt: skip
    bot = Bot(settings, store=store)  # handlers in the background, as by default
    seen = {"messages": 0, "statuses": 0}

    @bot.on_message
    def on_message(message: Any, ctx: Any) -> None:
        seen["messages"] += 1

    @bot.on_status
    def on_status(status: Any, ctx: Any) -> None:
        seen["statuses"] += 1

    bot.seen = seen  # type: ignore[attr-defined]
    return bot


def library(bot: Bot) -> Callable[[Raw], None]:
    def run(raw: Raw) -> None:
        for body, signature in raw:
            request = WebhookRequest(
                method="POST",
                url=URL,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                query={},
                body=body,
            )
            if bot.handle(request).status != 200:
                raise SystemExit("library: request refused")
        if not bot.drain(60):
            raise SystemExit("library: handlers did not finish")

    return run


def new_pywa() -> Callable[[Raw], None]:
    try:
        from pywa import WhatsApp
    except ImportError:
        raise SystemExit("pywa is the baseline: pip install pywa") from None
    wa = WhatsApp(
        phone_id=PHONE_ID, token="t", app_secret=SECRET, verify_token="v", server=None, validate_updates=True
    )
    seen = {"n": 0}

    @wa.on_message
    def on_message(client: Any, message: Any) -> None:
        seen["n"] += 1

    @wa.on_message_status
    def on_status(client: Any, status: Any) -> None:
        seen["n"] += 1

    def run(raw: Raw) -> None:
        for body, signature in raw:
            if wa.webhook_update_validator(body, signature) is not None:
                raise SystemExit("pywa: refused the signature")
            if wa.webhook_update_handler(body)[1] != 200:
                raise SystemExit("pywa: refused the update")

    run.seen = seen  # type: ignore[attr-defined]
    return run


def timed(fn: Callable[[Raw], None], raw: Raw) -> tuple[float, float]:
    """(CPU, wall) seconds per message; garbage collection off inside, as ``timeit`` does."""
    gc.collect()
    gc.disable()
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        fn(raw)
        return (time.process_time() - cpu) / len(raw), (time.perf_counter() - wall) / len(raw)
    finally:
        gc.enable()


def compare(
    kind: str, template: dict[str, Any], key: str, per_round: int, rounds: int, tmp: Path
) -> dict[str, Any]:
    default_bot = new_bot(SQLiteStore(tmp / f"{kind}.sqlite3"))
    memory_bot = new_bot(MemoryStore())
    variants: dict[str, Callable[[Raw], None]] = {
        "floor": floor,
        "floor+sql": durable_floor(tmp / f"{kind}-floor.sqlite3"),
        "pywa": new_pywa(),
        "default": library(default_bot),
        "memory": library(memory_bot),
    }
    names = list(variants)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    next_id = 0
    for r in range(rounds + 1):  # round 0 warms up (imports, caches, the store's first pages)
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            raw = [(b, meta_signature(SECRET, b)) for b in bodies(template, key, next_id, per_round)]
            next_id += per_round
            result = timed(variants[name], raw)
            if r:
                times[name].append(result)
    for bot in (default_bot, memory_bot):
        handled = bot.seen[key]  # type: ignore[attr-defined]
        if handled != per_round * (rounds + 1):
            raise SystemExit(f"{kind}: {handled} of {per_round * (rounds + 1)} events reached the handler")
        bot.close()

    def ratio(a: str, b: str, clock: int = 0) -> float:
        return statistics.median(x[clock] / y[clock] for x, y in zip(times[a], times[b], strict=True))

    print(f"\n{kind}: {rounds} rounds x {per_round} messages per variant (medians, microseconds per message)")
    print(f"  {'variant':9s} {'CPU':>8s} {'wall':>8s}   CPU vs pywa   CPU vs floor")
    for name in names:
        cpu = statistics.median(x[0] for x in times[name]) * 1e6
        wall = statistics.median(x[1] for x in times[name]) * 1e6
        print(
            f"  {name:9s} {cpu:8.1f} {wall:8.1f}   {ratio(name, 'pywa'):9.2f}x   {ratio(name, 'floor'):9.2f}x"
        )
    return {"default": ratio("default", "pywa"), "memory": ratio("memory", "pywa")}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-round", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # neither side's INFO lines are the subject here
    with tempfile.TemporaryDirectory() as tmp:
        text = compare("text", TEXT, "messages", args.per_round, args.rounds, Path(tmp))
        status = compare("status", STATUS, "statuses", args.per_round, args.rounds, Path(tmp))
    results = [
        ("webhook-text", text["default"], 1.5),
        ("webhook-status", status["default"], 1.5),
        ("webhook-memory", max(text["memory"], status["memory"]), 1.0),
    ]
    print()
    for name, figure, target in results:
        print(f"{name}: {figure:.2f}x pywa (target <= {target:.1f}x) {'OK' if figure <= target else 'BELOW'}")
    return 0 if all(figure <= target for _, figure, target in results) else 1


if __name__ == "__main__":
    sys.exit(main())
