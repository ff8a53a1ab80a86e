"""Sustained webhook rate and ack latency under gunicorn, open loop, next to the floor.

Three apps, each under ``gunicorn -w 2 --threads 8`` (see ``THREADS``) on 127.0.0.1:

* ``floor`` — a minimal Flask app that only verifies the ``X-Hub-Signature-256`` HMAC and parses
  the JSON body: what any verified webhook costs;
* ``sqlite`` — the Flask adapter (``whatsapp_blueprint``) with the library's default
  configuration (a SQLite file, handlers on background threads) and one message handler;
* ``postgres`` — the same with ``WHATSAPP_STORE_URL=postgresql://...`` (a schema of this run's
  own on the local server, dropped at the end; skipped with a note when the server is down).

The handler does nothing itself (it only counts): what is measured is the ack — verify, parse,
record the message with its work — while the background handling (the handler's run and its
finish write) competes for the same two workers, as in production.

This process is the load: signed Meta text messages (each a new message id) sent **open loop**
at 300, 500 and 1000 requests/s — request *i* is due at ``start + i / rate`` whether or not the
earlier ones were answered, and its latency is counted from that due time, so a server (or a
client) that falls behind shows it. One new connection per request (sync workers close it).
Variants are interleaved round by round; each level's figure is the median over rounds of the
per-round p99. Errors are non-200 answers, refused connections and time-outs.

Final lines ``load: <figure> (target <target>) OK|BELOW``: p99 at 1000 requests/s with SQLite
and with PostgreSQL against 20 ms, with 0 errors; exits 1 when either is below target.

Also printed: the CPU time the app's workers spent per request (their own and the background
handling), which does not depend on how busy the machine is as much as latency does, and for
the PostgreSQL app the CPU time of the server's backends that serve it (``application_name``
``eki-bench-load-<pid>``; the server's background writers are not counted).

Usage: ``python bench/load.py [SECONDS_PER_RUN] [ROUNDS]`` (default 3 s, 3 rounds: about 2 min).
``EKI_BENCH_APPS=floor,postgres`` runs only those apps and ``EKI_BENCH_RATES=1000`` only those
rates, for shorter runs while working on one (the final lines need sqlite, postgres and floor at
1000/s).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from eki_whatsapp.testing import meta_text

SECRET = "e1d2c3b4a5968778695a4b3c2d1e0f00"
PHONE_ID = "106540352242922"
RATES = tuple(int(r) for r in os.environ.get("EKI_BENCH_RATES", "300,500,1000").split(","))
APPS = os.environ.get("EKI_BENCH_APPS", "floor,sqlite,postgres").split(",")
TARGET_MS = 20.0
TARGET_RATE = 1000
PG = ("127.0.0.1", 5432)
PG_URL = os.environ.get("EKI_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TIMEOUT = 10.0
#: The PostgreSQL app's application_name, by which its backends' CPU time is found.
DB_APPLICATION = f"eki-bench-load-{os.getpid()}"
#: Threads per gunicorn worker (gthread): a request waiting for its database commit does not
#: hold up the next one (a sync worker serves one at a time, so a PostgreSQL commit's fsync of a
#: few ms caps it at a few hundred requests/s). The same for the floor. The PostgreSQL pool is
#: sized as docs/store.md says: the server threads plus the handler threads (8 by default).
THREADS = int(os.environ.get("EKI_BENCH_THREADS", "8"))

APP = """
import hashlib, hmac, json, os

from flask import Flask, Response, request

VARIANT = os.environ["LOAD_VARIANT"]
SECRET = os.environ["LOAD_SECRET"]
app = Flask(__name__)

if VARIANT == "floor":
    KEY = SECRET.encode()

    @app.post("/webhook")
    def webhook():
        body = request.get_data()
        expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return Response("bad signature", status=401)
        json.loads(body)
        return Response("ok", status=200)
else:
    from eki_whatsapp import Bot, Settings
    from eki_whatsapp_flask import whatsapp_blueprint

    settings = Settings(
        _env_file=None,
        whatsapp_provider="meta",
        meta_whatsapp_token="bench-token",
        meta_phone_number_id=os.environ["LOAD_PHONE_ID"],
        meta_app_secret=SECRET,
        meta_verify_token="bench-verify",
        whatsapp_store_url=os.environ["LOAD_STORE_URL"],
    )
    bot = Bot(settings)
    handled = 0

    @bot.on_message
    def count(message, ctx):
        global handled
        handled += 1

    app.register_blueprint(whatsapp_blueprint(bot), url_prefix="/webhook")

"""


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Run:
    """One run of one variant at one rate."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    elapsed: float = 0.0
    #: CPU seconds the app's gunicorn workers used during the run (and the drain after it).
    cpu: float = 0.0
    #: CPU seconds the PostgreSQL server's processes used meanwhile (0 when not on this host).
    db_cpu: float = 0.0

    def p(self, q: float) -> float:
        if not self.latencies:
            return float("inf")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(name: str, workdir: Path, env: dict[str, str]) -> Server:
    port = free_port()
    log = workdir / f"{name}.log"
    full = os.environ | env | {"LOAD_VARIANT": name, "LOAD_SECRET": SECRET, "LOAD_PHONE_ID": PHONE_ID}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "load_app:app", "--workers", "2", "--threads", str(THREADS),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--graceful-timeout", "5"],
        cwd=workdir, env=full, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return Server(name, port, proc, log)


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name}: gunicorn exited:\n{server.log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{server.name}: not listening after {timeout:.0f} s")


def requests(port: int, prefix: str, n: int) -> list[bytes]:
    """``n`` signed posts, each a new message id (so each is a new message for the store), from
    1000 users in turn."""
    out = []
    for i in range(n):
        payload = meta_text(
            "Does it come in another color?",
            message_id=f"wamid.LOAD{prefix}{i:07d}",
            sender=f"1650555{i % 1000:04d}",
            timestamp=1749416383 + i,
            phone_number_id=PHONE_ID,
        )
        body, signature = payload.body, payload.signature(SECRET)
        head = (
            f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def shoot(port: int, payloads: list[bytes], rate: float) -> Run:
    """Send ``payloads`` open loop at ``rate``; latency of each from its due time.

    Each request is a non-blocking socket driven by the event loop's reader/writer callbacks
    (no task or stream per request): the client must cost far less than the servers it loads.
    """
    loop = asyncio.get_running_loop()
    run = Run(sent=len(payloads))
    open_: set[socket.socket] = set()
    all_done = loop.create_future()

    def finish(sock: socket.socket, ok: bool, due: float) -> None:
        if sock in open_:
            open_.discard(sock)
            loop.remove_reader(sock.fileno())
            loop.remove_writer(sock.fileno())
            sock.close()
            if ok:
                run.latencies.append(loop.time() - due)
            else:
                run.errors += 1
        if scheduled and not open_ and not all_done.done():
            all_done.set_result(None)

    def fire(payload: bytes, due: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        open_.add(sock)
        head = bytearray()
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            finish(sock, False, due)
            return

        def readable() -> None:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                finish(sock, False, due)
                return
            if data:
                if len(head) < 12:
                    head.extend(data[:12])
                return
            finish(sock, head[9:12] == b"200", due)  # the server closes after its answer

        def writable() -> None:
            loop.remove_writer(sock.fileno())
            try:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise ConnectionRefusedError
                sock.sendall(payload)  # a post of ~1 KB fits in the socket's buffer
            except OSError:
                finish(sock, False, due)
                return
            loop.add_reader(sock.fileno(), readable)

        loop.add_writer(sock.fileno(), writable)

    scheduled = False
    begin = loop.time() + 0.02
    for i, payload in enumerate(payloads):
        due = begin + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        fire(payload, due)
    scheduled = True
    if open_:
        try:
            await asyncio.wait_for(asyncio.shield(all_done), TIMEOUT)
        except asyncio.TimeoutError:
            for sock in list(open_):
                finish(sock, False, 0.0)  # no answer in time: an error
    run.elapsed = loop.time() - begin
    return run


def workers_cpu(server: Server) -> float:
    """CPU seconds (user + system) used so far by the server's gunicorn workers."""
    master = server.proc.pid
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return 0.0
    return sum(process_cpu(pid) for pid in children)


def process_cpu(pid: int | str) -> float:
    """CPU seconds (user + system) used so far by process ``pid``; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def db_server_cpu(application: str) -> float:
    """CPU seconds used so far by the PostgreSQL server's backends that serve ``application``
    (the app's connections: not the server's other clients, nor its background writers); 0
    when the server is not on this host."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        pids = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,))
        return sum(process_cpu(pid) for (pid,) in pids.fetchall())


async def idle(servers: list[Server], limit: float = 15.0) -> None:
    """Wait until the servers' workers use next to no CPU (their background work is done)."""
    deadline = time.monotonic() + limit
    before = sum(workers_cpu(s) for s in servers)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        now = sum(workers_cpu(s) for s in servers)
        if now - before < 0.02:
            return
        before = now


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pg_up() -> bool:
    try:
        with socket.create_connection(PG, timeout=1):
            return True
    except OSError:
        return False


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


def main() -> int:
    args = sys.argv[1:]
    seconds = float(args[0]) if args else 3.0
    rounds = int(args[1]) if len(args) > 1 else 3
    print(f"load average before: {load_average()} ({os.cpu_count()} cores)")
    schema = f"eki_bench_{os.getpid()}"
    servers: list[Server] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "load_app.py").write_text(APP, encoding="utf-8")
        variants = {
            "floor": {},
            "sqlite": {"LOAD_STORE_URL": f"sqlite:///{work}/bench.sqlite3"},
        }
        if "postgres" in APPS and pg_up():
            query = f"schema={schema}&pool_max={THREADS + 8}&application_name={DB_APPLICATION}"
            variants["postgres"] = {"LOAD_STORE_URL": f"{PG_URL}?{query}"}
        elif "postgres" in APPS:
            print(f"PostgreSQL is not reachable on {PG[0]}:{PG[1]}: its variant is left out")
        variants = {name: env for name, env in variants.items() if name in APPS}
        try:
            for name, env in variants.items():
                servers.append(start(name, work, env))
            for server in servers:
                wait_ready(server)
            results = asyncio.run(measure(servers, seconds, rounds))
        finally:
            for server in servers:
                server.proc.terminate()
            for server in servers:
                try:
                    server.proc.wait(15)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
            if "postgres" in variants:
                drop_schema(schema)
    print(f"load average after: {load_average()}")
    return report(results, [s.name for s in servers])


async def measure(servers: list[Server], seconds: float, rounds: int) -> dict[tuple[str, int], list[Run]]:
    for server in servers:  # warm up: imports, pools, the first sweep
        await shoot(server.port, requests(server.port, f"W{server.name}", 200), 200)
    results: dict[tuple[str, int], list[Run]] = {}
    for rate in RATES:
        n = int(rate * seconds)
        for r in range(rounds):
            order = servers[r % len(servers) :] + servers[: r % len(servers)]  # rotate who goes first
            for server in order:
                payloads = requests(server.port, f"{server.name}{rate}r{r}", n)
                await idle(servers)  # the previous run's background work is not this one's load
                postgres = server.name == "postgres"
                cpu, db_cpu = workers_cpu(server), db_server_cpu(DB_APPLICATION) if postgres else 0.0
                run = await shoot(server.port, payloads, rate)
                await idle([server])  # this run's background work, counted with it
                run.cpu = workers_cpu(server) - cpu
                if postgres:
                    run.db_cpu = db_server_cpu(DB_APPLICATION) - db_cpu
                results.setdefault((server.name, rate), []).append(run)
                print(
                    f"  {server.name:>8} {rate:5d}/s round {r + 1}: {len(run.latencies) / run.elapsed:6.0f}/s "
                    f"p50 {run.p(0.5):6.1f} ms p99 {run.p(0.99):7.1f} ms errors {run.errors} "
                    f"cpu {run.cpu / run.sent * 1e6:5.0f} us/request"
                    + (f" db {run.db_cpu / run.sent * 1e6:4.0f} us" if run.db_cpu else ""),
                    flush=True,
                )
    return results


def report(results: dict[tuple[str, int], list[Run]], names: list[str]) -> int:
    print()
    print(
        f"{'app':>8} {'rate':>6} {'answered/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'cpu us/req':>10} {'db us/req':>9}  (median of rounds; cpu: the app's workers, db: the server)"
    )
    for rate in RATES:
        for name in names:
            runs = results[(name, rate)]
            print(
                f"{name:>8} {rate:6d} {statistics.median(len(r.latencies) / r.elapsed for r in runs):10.0f} "
                f"{statistics.median(r.p(0.5) for r in runs):8.1f} {statistics.median(r.p(0.99) for r in runs):8.1f} "
                f"{sum(r.errors for r in runs):6d} {statistics.median(r.cpu / r.sent * 1e6 for r in runs):10.0f} "
                f"{statistics.median(r.db_cpu / r.sent * 1e6 for r in runs):9.0f}"
            )
    ok = True
    if TARGET_RATE not in RATES or "floor" not in names:
        print(
            f"load: not measured at {TARGET_RATE}/s next to the floor (EKI_BENCH_RATES, EKI_BENCH_APPS) BELOW"
        )
        return 1
    for name, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        if name not in names:
            print(f"load: {label} not measured (target p99 <= {TARGET_MS:.0f} ms at {TARGET_RATE}/s) BELOW")
            ok = False
            continue
        runs = results[(name, TARGET_RATE)]
        p99 = statistics.median(r.p(0.99) for r in runs)
        errors = sum(r.errors for r in runs)
        floor = statistics.median(r.p(0.99) for r in results[("floor", TARGET_RATE)])
        good = p99 <= TARGET_MS and errors == 0
        ok = ok and good
        print(
            f"load: {label} p99 {p99:.1f} ms at {TARGET_RATE}/s, {errors} errors, floor p99 {floor:.1f} ms "
            f"(target <= {TARGET_MS:.0f} ms, 0 errors) {'OK' if good else 'BELOW'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
