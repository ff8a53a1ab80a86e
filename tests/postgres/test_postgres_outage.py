"""Losing the PostgreSQL connection: the webhook answers 503 (the provider retries) and the pool
recovers on its own. Backends are terminated with ``pg_terminate_backend`` from another connection,
never by stopping the server (others use it)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from eki_whatsapp import Bot, WebhookResponse
from eki_whatsapp.store.postgres import PostgresStore
from eki_whatsapp.testing import meta_text

from ..core.helpers import APP_SECRET, make_settings


@pytest.fixture
def app_name() -> str:
    """The ``application_name`` of this test's pool, so only its own backends are terminated."""
    return f"eki_outage_{os.getpid()}"


@pytest.fixture
def bot(pg_url: str, app_name: str) -> Iterator[Bot]:
    url = f"{pg_url}&application_name={app_name}&pool_min=2&pool_max=4"
    bot = Bot(make_settings(whatsapp_store_url=url, whatsapp_inline_handlers=True))
    assert isinstance(bot.store, PostgresStore)
    yield bot
    bot.close()


def _terminate(base_url: str, app_name: str, *, waiting_only: bool = False) -> int:
    """Terminate this test's backends (only those waiting on a lock, when asked), waiting until
    they are gone; how many."""
    sql = "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name=%s"
    if waiting_only:
        sql += " AND wait_event_type='Lock'"
    with psycopg.connect(base_url, autocommit=True) as conn:
        return len(conn.execute(sql, (app_name,)).fetchall())


def _wait_for_lock_waiter(base_url: str, app_name: str) -> None:
    with psycopg.connect(base_url, autocommit=True) as conn:
        for _ in range(500):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name=%s AND wait_event_type='Lock'",
                (app_name,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)  # polling the server's view, not timing the code under test
    raise AssertionError("the webhook's insert never waited on the lock")


def test_a_connection_lost_mid_request_answers_503_and_the_retry_is_logged(
    bot: Bot, pg_base_url: str, pg_schema: str, app_name: str
) -> None:
    payload = meta_text("hola")
    request = payload.request(secret=APP_SECRET)
    # Another transaction holds the same message id, so the webhook's insert waits on it...
    blocker = psycopg.connect(pg_base_url)
    blocker.execute(
        f'INSERT INTO "{pg_schema}".message_log (direction, provider, message_id, type, created_at, '
        "updated_at) VALUES ('in', 'meta', %s, 'text', now(), now())",
        (payload.message_id,),
    )
    answers: list[WebhookResponse] = []
    webhook = threading.Thread(target=lambda: answers.append(bot.handle(request)))
    webhook.start()
    try:
        _wait_for_lock_waiter(pg_base_url, app_name)
        # ...and its connection is cut while it waits: mid-request.
        assert _terminate(pg_base_url, app_name, waiting_only=True) == 1
        webhook.join(30)
    finally:
        blocker.rollback()
        blocker.close()
    assert [a.status for a in answers] == [503]
    # The provider retries: the pool has replaced the dead connection and the message is logged.
    assert bot.handle(request).status == 200
    row = bot.store.get_message("meta", payload.message_id or "")
    assert row is not None and row.text == "hola"


def test_the_pool_recovers_after_every_connection_was_terminated(
    bot: Bot, pg_base_url: str, app_name: str
) -> None:
    assert bot.handle(meta_text("before").request(secret=APP_SECRET)).status == 200
    assert _terminate(pg_base_url, app_name) >= 1
    for text in ("after", "and again"):
        payload = meta_text(text)
        assert bot.handle(payload.request(secret=APP_SECRET)).status == 200
        assert bot.store.get_message("meta", payload.message_id or "") is not None


def test_no_connection_within_the_pool_timeout_answers_503(pg_url: str) -> None:
    bot = Bot(
        make_settings(
            whatsapp_store_url=f"{pg_url}&pool_min=1&pool_max=1&pool_timeout=0.2",
            whatsapp_inline_handlers=True,
        )
    )
    assert isinstance(bot.store, PostgresStore)
    try:
        with bot.store._pool.connection():  # the only connection is busy elsewhere
            assert bot.handle(meta_text("busy").request(secret=APP_SECRET)).status == 503
        assert bot.handle(meta_text("free").request(secret=APP_SECRET)).status == 200
    finally:
        bot.close()


def test_a_server_that_cannot_be_reached_at_start_is_a_clear_error(pg_schema: str) -> None:
    from eki_whatsapp import StoreError

    with pytest.raises(StoreError, match=r"no connection within 1 s.*is the server up"):
        PostgresStore(f"postgresql://postgres@127.0.0.1:9/test?schema={pg_schema}&pool_timeout=1")
