"""Benchmark: outbound text messages through ``MetaCloud.send_async`` vs a bare ``httpx.AsyncClient``.

A minimal Graph-API-like HTTP/1.1 server (keep-alive, fixed JSON answer) runs in its own process
on 127.0.0.1 so it is not the bottleneck and does not share the client's GIL. In the same run,
``N`` text messages are sent at concurrency ``C`` with the library's async face and the same JSON
bodies are posted with a bare ``httpx.AsyncClient`` (same pool size). Rounds alternate
(bare first, then library first, ...); the figure is the median of the per-round ratios.

    .venv/bin/python bench/send.py            # N=1500 per round, C=8, 8 rounds
    .venv/bin/python bench/send.py -n 5000 -c 64 --rounds 4

httpx's connection pool gets slower as concurrency grows (both faces alike): at C=64 both
sides reach only a few hundred messages/s on a 2-core machine, at C=4..16 well over 1000.

**The reply path handlers use**: ``ctx.reply("...")`` inside a handler of a bot on its default
store (a SQLite file) — the router's decision (window, opt-out, allowance), the idempotency
receipt, the log row and the ledger — against a bare ``httpx.Client.post`` of the same body, one
message at a time, alternating variant by variant; the figure is the median of per-round ratios
of process CPU time per message (the server's own CPU is in another process).

Targets: library >= 0.85x the bare client and >= 1000 messages/s; the reply path <= 1.3x the
bare client's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import tempfile

import httpx

from eki_whatsapp import Bot, Settings, SQLiteStore
from eki_whatsapp.context import Context
from eki_whatsapp.events import InboundMessage
from eki_whatsapp.messages import Text
from eki_whatsapp.providers import MetaCloud, RetryPolicy

PHONE_ID = "106540352242922"
VERSION = "v26.0"
TOKEN = "bench-token"
TARGET_RATIO = 0.85
TARGET_RATE = 1000.0
TARGET_REPLY = 1.3


# --------------------------------------------------------------------------------------------
# A fast fake Graph API: answers every POST like /{version}/{phone-number-id}/messages
# --------------------------------------------------------------------------------------------
class GraphProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server: parses request heads and bodies, answers 200 JSON."""

    counter = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end]).lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                line_end = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : line_end if line_end >= 0 else None])
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[head_end + 4 : total])
            del self.buffer[:total]
            GraphProtocol.counter += 1
            try:
                to = json.loads(body).get("to", "")
            except ValueError:
                to = ""
            answer = (
                b'{"messaging_product":"whatsapp","contacts":[{"input":"%s","wa_id":"%s"}],'
                b'"messages":[{"id":"wamid.BENCH%d"}]}' % (to.encode(), to.encode(), GraphProtocol.counter)
            )
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(answer), answer)
            )


def serve(sock: socket.socket) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(GraphProtocol, sock=sock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------
def recipients(n: int) -> list[str]:
    return [f"+1650555{i % 10000:04d}" for i in range(n)]


async def run_workers(n: int, concurrency: int, send: object) -> float:
    """Messages per second for ``n`` calls of ``send(i)`` by ``concurrency`` workers."""
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            await send(i)  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def bench_library(base_url: str, n: int, concurrency: int, limits: httpx.Limits) -> float:
    provider = MetaCloud(
        TOKEN, PHONE_ID, graph_version=VERSION, base_url=base_url, limits=limits, retry=RetryPolicy.none()
    )
    tos = recipients(n)
    ids: list[str] = []

    async def send(i: int) -> None:
        receipt = await provider.send_async(tos[i], Text(f"Hello number {i}, your order has shipped."))
        ids.append(receipt.message_id)

    rate = await run_workers(n, concurrency, send)
    assert len(ids) == n and all(i.startswith("wamid.") for i in ids)
    await provider.aclose()
    return rate


async def bench_bare(base_url: str, n: int, concurrency: int, limits: httpx.Limits) -> float:
    url = f"{base_url}/{VERSION}/{PHONE_ID}/messages"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    tos = [t.lstrip("+") for t in recipients(n)]
    ids: list[str] = []
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def send(i: int) -> None:
            body = json.dumps(
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": tos[i],
                    "type": "text",
                    "text": {"body": f"Hello number {i}, your order has shipped.", "preview_url": False},
                },
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            response = await client.post(url, content=body, headers=headers)
            response.raise_for_status()
            ids.append(response.json()["messages"][0]["id"])

        rate = await run_workers(n, concurrency, send)
    assert len(ids) == n
    return rate


async def main_async(base_url: str, n: int, concurrency: int, rounds: int) -> tuple[list[float], list[float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # Warm-up (imports, connection set-up paths).
    await bench_bare(base_url, min(n, 300), concurrency, limits)
    await bench_library(base_url, min(n, 300), concurrency, limits)
    bare: list[float] = []
    lib: list[float] = []
    for round_no in range(rounds):
        # Alternate which goes first so drift in machine load hits both alike.
        if round_no % 2:
            lib.append(await bench_library(base_url, n, concurrency, limits))
            bare.append(await bench_bare(base_url, n, concurrency, limits))
        else:
            bare.append(await bench_bare(base_url, n, concurrency, limits))
            lib.append(await bench_library(base_url, n, concurrency, limits))
        print(
            f"  round {round_no + 1}: bare {bare[-1]:7.0f} msg/s   library {lib[-1]:7.0f} msg/s", flush=True
        )
    return bare, lib


# --------------------------------------------------------------------------------------------
# The reply path: ctx.reply through router, log and ledger (SQLite file) vs a bare httpx.Client
# --------------------------------------------------------------------------------------------
def reply_bot(base_url: str, path: Path) -> Bot:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, whatsapp_provider="meta", meta_whatsapp_token=TOKEN, meta_phone_number_id=PHONE_ID,
        meta_graph_base_url=base_url, meta_graph_version=VERSION, meta_app_secret="s" * 32,
    )  # fmt: skip
    return Bot(settings, store=SQLiteStore(path))


def inbound(i: int) -> InboundMessage:
    """A message the user just sent (its window open), as the webhook would have logged it."""
    from datetime import datetime, timezone

    return InboundMessage(
        provider="meta",
        id=f"wamid.IN{i:09d}",
        sender=recipients(i + 1)[i].lstrip("+"),
        recipient=PHONE_ID,
        timestamp=datetime.now(timezone.utc),
        type="text",
        text="hola",
        raw={},
    )


def reply_round(bot: Bot, start: int, n: int) -> float:
    """CPU seconds per ``ctx.reply`` (the inbound messages are logged before the clock starts)."""
    contexts = []
    # Leased to this process as the webhook leases what its handler threads run: work recorded
    # unclaimed and never finished would be claimed by the bot's sweeper inside later rounds.
    lease = bot.new_lease()
    for i in range(start, start + n):
        message = inbound(i)
        work = bot.store.record_work(message, lease)
        contexts.append(Context(bot, message, work))
    cpu = time.process_time()
    for i, ctx in enumerate(contexts):
        receipt = ctx.reply(f"Hello number {start + i}, your order has shipped.")
        assert receipt.message_id.startswith("wamid."), receipt
    spent = (time.process_time() - cpu) / n
    for ctx in contexts:  # handled, as the worker records after the handler
        assert ctx.work_id is not None
        bot.store.finish_work(ctx.work_id, lease.owner)
    return spent


def bare_round(client: httpx.Client, url: str, start: int, n: int) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    tos = [t.lstrip("+") for t in recipients(start + n)[start:]]
    cpu = time.process_time()
    for i, to in enumerate(tos):
        body = json.dumps(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"body": f"Hello number {start + i}, your order has shipped.", "preview_url": False},
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        response = client.post(url, content=body, headers=headers)
        response.raise_for_status()
        assert response.json()["messages"][0]["id"].startswith("wamid.")
    return (time.process_time() - cpu) / n


def compare_replies(base_url: str, n: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        bot = reply_bot(base_url, Path(tmp) / "bench.sqlite3")
        client = httpx.Client(timeout=30.0)
        url = f"{base_url}/{VERSION}/{PHONE_ID}/messages"
        reply_round(bot, 0, 50)  # warm-up: connections, first pages, imports
        bare_round(client, url, 0, 50)
        ratios, lib, bare = [], [], []
        for r in range(rounds):
            start = 100 + r * n
            if r % 2:
                lib.append(reply_round(bot, start, n))
                bare.append(bare_round(client, url, start, n))
            else:
                bare.append(bare_round(client, url, start, n))
                lib.append(reply_round(bot, start, n))
            ratios.append(lib[-1] / bare[-1])
        rows = bot.store.list_log(direction="out", limit=10_000)
        assert len(rows) == 50 + rounds * n, f"{len(rows)} replies logged"
        client.close()
        bot.close()
    print(
        f"ctx.reply (SQLite): median {statistics.median(lib) * 1e6:.0f} us CPU/message; "
        f"bare httpx.Client: {statistics.median(bare) * 1e6:.0f} us; ratios {', '.join(f'{x:.2f}' for x in ratios)}"
    )
    return statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1500, help="messages per round (default 1500)")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="concurrent senders (default 8)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds (default 8)")
    parser.add_argument("--replies", type=int, default=300, help="ctx.reply messages per round (default 300)")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    server = multiprocessing.get_context("fork").Process(target=serve, args=(sock,), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        print(f"send: fake Graph API at {base_url}; N={args.n} C={args.concurrency} rounds={args.rounds}")
        bare_rounds, lib_rounds = asyncio.run(main_async(base_url, args.n, args.concurrency, args.rounds))
        reply_ratio = compare_replies(base_url, args.replies, args.rounds)
    finally:
        server.terminate()
        server.join(5)
    ratio = statistics.median(x / y for x, y in zip(lib_rounds, bare_rounds, strict=True))
    bare, lib = statistics.median(bare_rounds), statistics.median(lib_rounds)
    ok = ratio >= TARGET_RATIO and lib >= TARGET_RATE
    print(f"bare httpx.AsyncClient: median {bare:.0f} msg/s")
    print(f"MetaCloud.send_async:   median {lib:.0f} msg/s (ratio: median of per-round ratios)")
    print(
        f"send: {ratio:.2f}x bare, {lib:.0f} msg/s (target >= {TARGET_RATIO}x and >= {TARGET_RATE:.0f} msg/s) "
        f"{'OK' if ok else 'BELOW'}"
    )
    reply_ok = reply_ratio <= TARGET_REPLY
    print(
        f"send-reply: {reply_ratio:.2f}x bare CPU (target <= {TARGET_REPLY}x) {'OK' if reply_ok else 'BELOW'}"
    )
    return 0 if ok and reply_ok else 1


if __name__ == "__main__":
    sys.exit(main())
