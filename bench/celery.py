"""End-to-end throughput with Celery workers, and its scaling from 1 worker to 2.

The web side is a ``Bot`` with ``WHATSAPP_RUNNER=celery`` in this process: each signed Meta
message goes through ``bot.handle()`` (verify, log the message and its work in the store, send the
task, ack). The workers are real ``eki-whatsapp worker`` processes (threads pool, ``--concurrency``
handlers each) on Redis; the handler waits ``--think`` seconds (a model call) and replies through
the fake Graph API on 127.0.0.1. The store is PostgreSQL when it answers on 127.0.0.1:5432 (a
schema of this run's own, dropped at the end), else a SQLite file.

Two workers run for the whole benchmark: worker A consumes queues ``one`` and ``two``, worker B
only ``two``. A round sends a burst of ``--messages`` messages to ``one`` (1 worker), then to
``two`` (2 workers), in a rotating order; per variant it measures

* **throughput**: messages answered per second, from the first webhook to the last reply the fake
  provider accepted;
* **latency**: from each message's webhook to its reply accepted by the fake provider (median,
  p99) — under a burst, mostly the wait in the queue.

For information it also sends 20 messages paced at half of one worker's ceiling, where the
latency is the handler's think time plus what the Celery hop costs.

The figure is the median over rounds of the per-round ratio throughput(2 workers) /
throughput(1 worker); target >= 1.6x (handlers wait on I/O, so a second worker should nearly
double the rate even on a 2-core machine).

Last line: ``celery-scaling: <ratio>x (target >= 1.6x) OK|BELOW``; exit 1 when below target.

    python bench/celery.py [--rounds 3] [--messages 80] [--think 0.2] [--concurrency 4] [--log FILE]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

# This file is called celery.py: keep its folder off the path, or `import celery` finds it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from eki_whatsapp import Bot  # noqa: E402
from eki_whatsapp.store import open_store  # noqa: E402
from eki_whatsapp.testing import FakeGraphAPI, meta_text  # noqa: E402
from eki_whatsapp.testing.processes import celery_worker, forget_queue, wait_for  # noqa: E402
from eki_whatsapp.testing.services import service_reachable  # noqa: E402

SECRET = "bench-celery-secret"
URL = "https://bot.example.com/webhook/whatsapp/"
BROKER = "redis://127.0.0.1:6379/11"
PG = "postgresql://postgres@127.0.0.1:5432/test"
TARGET = 1.6

BOT = """
import os
import time

from eki_whatsapp import Bot


def create_bot():
    bot = Bot()
    think = float(os.environ["BENCH_THINK"])

    @bot.on_message
    def answer(message, ctx):
        time.sleep(think)  # the model call
        ctx.reply(f"echo {message.text}")

    return bot
"""


def store_url(tmp: Path) -> tuple[str, str | None]:
    """PostgreSQL (a schema of this run's own) when it answers, else a SQLite file."""
    if service_reachable("127.0.0.1", 5432):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            pass
        else:
            schema = f"eki_bench_celery_{os.getpid()}"
            return f"{PG}?schema={schema}", schema
    return f"sqlite:///{tmp / 'bench.sqlite3'}", None


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def burst(web: Bot, graph: FakeGraphAPI, messages: int, every: float = 0.0) -> dict[str, float]:
    """Send ``messages`` at once (or one ``every`` seconds, on schedule); wait for every reply;
    throughput and latencies."""
    tag = uuid.uuid4().hex[:8]
    posted: dict[str, float] = {}
    before = len(graph.sent)
    start = time.time()
    for n in range(messages):
        text = f"{tag}-{n}"
        if every:
            time.sleep(max(0.0, start + n * every - time.time()))
        posted[f"echo {text}"] = time.time()
        response = web.handle(meta_text(text, sender=f"1650556{n:04d}").request(URL, secret=SECRET))
        assert response.status == 200, response
    wait_for(lambda: len(graph.sent) - before >= messages, "every reply", timeout=300, interval=0.01)
    replies = {m.text: m.at.timestamp() for m in graph.sent[before:] if m.text in posted}
    assert len(replies) == messages, f"{len(replies)} of {messages} answered"
    latencies = sorted(replies[text] - posted[text] for text in posted)
    return {
        "rate": messages / (max(replies.values()) - start),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
    }


def main(rounds: int, messages: int, think: float, concurrency: int, log_file: str | None = None) -> int:
    if not service_reachable("127.0.0.1", 6379):
        print("Redis is not reachable on 127.0.0.1:6379: start it (redis-server) and run again")
        return 2
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp_dir, ExitStack() as stack:
        tmp = Path(tmp_dir)
        (tmp / "bench_celery_bot.py").write_text(BOT, encoding="utf-8")
        url, schema = store_url(tmp)
        if schema is not None:  # dropped last, when every process has let go of it
            stack.callback(drop_schema, schema)
        open_store(url).close()  # the schema exists before the processes race to create it
        graph = stack.enter_context(FakeGraphAPI(app_secret=SECRET))
        prefix = f"eki-bench-{uuid.uuid4().hex[:8]}"
        settings = {
            "WHATSAPP_PROVIDER": "meta",
            "WHATSAPP_RUNNER": "celery",
            "WHATSAPP_BOT": "bench_celery_bot:create_bot",
            "WHATSAPP_CELERY_BROKER_URL": BROKER,
            "WHATSAPP_STORE_URL": url,
            "WHATSAPP_HANDLER_LEASE_SECONDS": "300",  # no sweeps while a burst waits in the queue
            "BENCH_THINK": str(think),
            **graph.env(),
        }
        os.environ.update(settings)
        for name in ("WHATSAPP_INLINE_HANDLERS", "WHATSAPP_CELERY_APP", "WHATSAPP_WEBHOOK_URL"):
            os.environ.pop(name, None)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), *sys.path])}
        sys.path.insert(0, str(tmp))
        from bench_celery_bot import create_bot  # type: ignore[import-not-found]

        pool = {"pool": "threads", "concurrency": concurrency}
        queues = {1: f"{prefix}-one", 2: f"{prefix}-two"}
        for queue in queues.values():
            stack.callback(forget_queue, BROKER, queue)
        log = Path(log_file) if log_file else tmp / "workers.log"
        stack.enter_context(
            celery_worker(
                env=env, cwd=tmp, log=log, name="a", options=["--queues", f"{queues[1]},{queues[2]}"], **pool
            )
        )
        stack.enter_context(
            celery_worker(env=env, cwd=tmp, log=log, name="b", options=["--queues", queues[2]], **pool)
        )
        webs: dict[int, Bot] = {}
        for workers, queue in queues.items():
            os.environ["WHATSAPP_CELERY_QUEUE"] = queue
            webs[workers] = create_bot()  # the same bot: its handlers say which events have work
            stack.callback(webs[workers].close)
        for web in webs.values():  # warm up: connections, first imports in the workers
            burst(web, graph, concurrency)
        results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for r in range(rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                results[workers].append(burst(webs[workers], graph, messages))
        # Paced at half of one worker's ceiling: no queue, so the latency is the handler's
        # think time plus what the Celery hop costs (store, broker, worker, reply).
        pace = 2 * think / concurrency
        paced = [burst(webs[1], graph, 20, every=pace) for _ in range(rounds)]
        store = "PostgreSQL" if schema else "SQLite"
        print(
            f"{rounds} rounds, bursts of {messages} messages; handler think {think * 1000:.0f} ms; "
            f"{concurrency} handler threads per worker; {store} store, Redis broker"
        )
        print("workers   answered/s   p50 ms   p99 ms   (medians of rounds)")
        for workers in (1, 2):
            rows = results[workers]
            print(
                f"{workers:7d}   {statistics.median(x['rate'] for x in rows):10.1f}   "
                f"{statistics.median(x['p50'] for x in rows) * 1000:6.0f}   "
                f"{statistics.median(x['p99'] for x in rows) * 1000:6.0f}"
            )
        p50 = statistics.median(x["p50"] for x in paced) * 1000
        p99 = statistics.median(x["p99"] for x in paced) * 1000
        print(
            f"paced at {1 / pace:.0f}/s, 1 worker: p50 {p50:.0f} ms, p99 {p99:.0f} ms "
            f"(the handler thinks {think * 1000:.0f} ms: the rest is the Celery hop)"
        )
        ideal = concurrency / think
        print(
            f"(one worker's ceiling: {concurrency} threads / {think * 1000:.0f} ms = {ideal:.0f} answered/s)"
        )
        ratio = statistics.median(
            two["rate"] / one["rate"] for one, two in zip(results[1], results[2], strict=True)
        )
    ok = ratio >= TARGET
    print(f"celery-scaling: {ratio:.2f}x (target >= {TARGET}x) {'OK' if ok else 'BELOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=80)
    parser.add_argument("--think", type=float, default=0.2, help="seconds each handler waits (a model call)")
    parser.add_argument("--concurrency", type=int, default=4, help="handler threads per worker")
    parser.add_argument("--log", help="keep the workers' output in this file")
    args = parser.parse_args()
    sys.exit(main(args.rounds, args.messages, args.think, args.concurrency, args.log))
