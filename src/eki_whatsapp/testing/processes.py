"""Servers and workers in processes of their own, for end-to-end tests and benchmarks.

Each runs in a session (process group) of its own, so that ``kill -9`` of it takes its children
too, and it is always gone when its ``with`` block ends::

    from eki_whatsapp.testing.processes import celery_worker, free_port, gunicorn

    url = f"http://127.0.0.1:{free_port()}/webhook/whatsapp/"
    with gunicorn("app:create_app()", url, env=env, cwd=app_dir, verify_token="v"), \\
            celery_worker(env=env, cwd=app_dir, log=tmp_path / "worker.log") as worker:
        ...
        kill(worker)  # kill -9, mid-task
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

__all__ = ["celery_worker", "children", "forget_queue", "free_port", "gunicorn", "kill", "wait_for"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; :class:`AssertionError` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def kill(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGKILL) -> None:
    """Send ``sig`` to the process and everything it started (its process group)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (gunicorn's workers under its master; Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        kill(process)
    process.wait(timeout=20)
    kill(process)  # children left behind by a parent that died first


@contextmanager
def gunicorn(
    app: str,
    url: str,
    *,
    env: Mapping[str, str],
    cwd: str | Path,
    verify_token: str,
    workers: int = 2,
    threads: int = 4,
    graceful_timeout: int = 1,
    timeout: float = 30.0,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn serving ``app`` (``module:callable()``) on ``url``'s host and port with
    ``workers`` threaded workers, its output in ``log`` (default: none); ready when the webhook
    answers Meta's challenge for ``verify_token``."""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") if log is not None else open(os.devnull, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", app, "--bind", url.split("/")[2], "--workers", str(workers),
             "--worker-class", "gthread", "--threads", str(threads),
             "--graceful-timeout", str(graceful_timeout)],
            env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        challenge = {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": "ready"}

        def up() -> bool:
            assert server.poll() is None, "gunicorn exited"
            try:
                return httpx.get(url, params=challenge, timeout=2).text == "ready"
            except httpx.HTTPError:
                return False

        wait_for(up, "gunicorn to answer", timeout=timeout, interval=0.1)
        yield server
    finally:
        _reap(server)


@contextmanager
def celery_worker(
    *,
    env: Mapping[str, str],
    cwd: str | Path,
    log: Path,
    name: str = "worker",
    pool: str = "solo",
    concurrency: int = 1,
    options: Sequence[str] = (),
    app: str | None = None,
    timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``eki-whatsapp worker`` (the bot from ``WHATSAPP_BOT`` in ``env``) — or, with ``app``,
    ``celery -A app worker`` (a project's own app: ``"mysite"``) — its output in ``log``; ready
    when Celery says so. ``pool="solo"`` runs tasks in the one process ``kill`` stops."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = log.stat().st_size if log.exists() else 0  # a restart appends to the same log
    command = ("celery", "-A", app) if app else ("eki_whatsapp",)
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", *command, "worker", "--pool", pool,
             "--concurrency", str(concurrency), "--hostname", f"{name}-{os.getpid()}@%h",
             "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat", *options],
            env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:

        def ready() -> bool:
            if worker.poll() is not None:
                raise AssertionError(f"the Celery worker exited ({worker.returncode}):\n{_tail(log)}")
            with log.open("rb") as f:
                f.seek(start)
                return b" ready." in f.read()

        wait_for(ready, f"the Celery worker to be ready (log: {log})", timeout=timeout, interval=0.1)
        yield worker
    finally:
        _reap(worker)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def app_env(path: Path | str, values: Mapping[str, str], *, unset: Sequence[str] = ()) -> dict[str, str]:
    """The environment of an app under test: this process's with ``values``, ``path`` first on
    ``PYTHONPATH`` (where the app's modules are) and the ``unset`` variables removed (so the
    developer's own settings, an OpenAI key say, do not leak into the test)."""
    env = {**os.environ, **values}
    for name in unset:
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])
    return env


def forget_queue(broker: str, queue: str) -> None:
    """Leave nothing of a test's Celery queue on a shared broker (Redis keys, or the RabbitMQ
    queue and its exchange)."""
    if broker.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(broker)
        try:
            keys = list(client.scan_iter(f"*{queue}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
        return
    from kombu.connection import Connection

    with Connection(broker) as conn:  # type: ignore[no-untyped-call]
        channel = conn.default_channel
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
