"""The PostgreSQL store: the store contract on a real server, its schema versions, its URL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import psycopg
import pytest

from eki_whatsapp import StoreError
from eki_whatsapp.store import Store, open_store
from eki_whatsapp.store.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore, migrate
from eki_whatsapp.testing.store_contract import BUSINESS, T0, USER, StoreContract, inbound, outbound

pytestmark = pytest.mark.usefixtures("pg_base_url")


def empty_tables(url: str, schema: str) -> None:
    """Empty every table of the store (faster than a new schema for each test)."""
    with psycopg.connect(url.split("?", 1)[0]) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname=%s AND tablename <> 'schema_version'",
                (schema,),
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for t in tables)} RESTART IDENTITY".encode())


@pytest.fixture(scope="module")
def contract_url(pg_base_url: str, new_schema: Callable[[], str]) -> str:
    """One schema for the contract's tests (each empties it first)."""
    return f"{pg_base_url}?schema={new_schema()}"


class TestPostgresStore(StoreContract):
    """The whole contract, each test on an emptied schema of this run's own."""

    def test_is_a_store(self, store: Store) -> None:
        for method in ("record_inbound", "record_status", "log_outbound", "increment", "compare_and_set"):
            assert callable(getattr(store, method))

    @pytest.fixture
    def store(self, contract_url: str) -> Iterator[PostgresStore]:
        store = PostgresStore(contract_url)
        empty_tables(contract_url, store.schema)
        yield store
        store.close()


def _version(base_url: str, schema: str) -> int:
    with psycopg.connect(base_url) as conn:
        row = conn.execute(f'SELECT max(version) FROM "{schema}".schema_version').fetchone()
    assert row is not None
    return int(row[0])


def test_the_url_selects_the_postgres_store(pg_url: str) -> None:
    for url in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        store.close()


def test_a_new_schema_is_created_at_the_current_version(pg_base_url: str, pg_schema: str) -> None:
    PostgresStore(pg_base_url, schema=pg_schema).close()
    assert _version(pg_base_url, pg_schema) == SCHEMA_VERSION


def test_an_older_schema_is_upgraded_in_place_and_keeps_its_rows(pg_base_url: str, pg_schema: str) -> None:
    assert SCHEMA_VERSION >= 2, "this test needs a schema with at least two versions"
    with psycopg.connect(pg_base_url) as conn:
        migrate(conn, pg_schema, target=1)  # what the first release of the store wrote
        conn.execute(
            f'INSERT INTO "{pg_schema}".kv (namespace, key, value) VALUES (%s, %s, %s)',
            ("app", "answer", "42"),
        )
    assert _version(pg_base_url, pg_schema) == 1
    store = PostgresStore(pg_base_url, schema=pg_schema)
    try:
        assert _version(pg_base_url, pg_schema) == SCHEMA_VERSION
        assert store.get_value("app", "answer") == 42
        store.record_inbound(inbound("wamid.AFTER"))
        assert [r.message_id for r in store.list_log(user=inbound().sender)] == ["wamid.AFTER"]
    finally:
        store.close()
    with psycopg.connect(pg_base_url) as conn:
        indexes = {
            r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname=%s", (pg_schema,))
        }
    assert {"message_log_user_in", "message_log_recipient", "message_log_work"} <= indexes


def test_a_version_2_schema_gets_durable_handling_and_keeps_its_windows(
    pg_base_url: str, pg_schema: str
) -> None:
    # Version 2 is what the store wrote before it kept work: its rows stay, work is recorded after.
    with psycopg.connect(pg_base_url) as conn:
        migrate(conn, pg_schema, target=2)
    with psycopg.connect(pg_base_url) as conn:
        conn.execute(f'SET search_path TO "{pg_schema}"')
        conn.execute(
            "INSERT INTO message_log (direction, provider, message_id, sender, recipient, type, timestamp, "
            "created_at, updated_at) VALUES ('in', 'meta', 'wamid.OLD', %s, %s, 'text', %s, now(), now())",
            (USER, BUSINESS, T0),
        )
    store = PostgresStore(pg_base_url, schema=pg_schema)
    try:
        assert _version(pg_base_url, pg_schema) == SCHEMA_VERSION
        row = store.get_message("meta", "wamid.OLD")
        assert row is not None and row.handling is None  # no work on rows from before
        assert store.last_inbound_at("meta", BUSINESS, USER) == T0  # the window, from the log
        assert store.pending_work() == []
        work_id = store.record_work(inbound("wamid.NEW"))
        assert work_id is not None and [w.id for w in store.pending_work()] == [work_id]
    finally:
        store.close()


def test_a_newer_schema_is_refused_with_both_versions_and_what_to_do(
    pg_base_url: str, pg_schema: str
) -> None:
    PostgresStore(pg_base_url, schema=pg_schema).close()
    with psycopg.connect(pg_base_url) as conn:
        conn.execute(f'INSERT INTO "{pg_schema}".schema_version (version) VALUES (%s)', (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError) as refused:
        PostgresStore(pg_base_url, schema=pg_schema)
    message = str(refused.value)
    assert f"version {SCHEMA_VERSION + 1}" in message
    assert f"up to version {SCHEMA_VERSION}" in message
    assert "pip install -U eki-whatsapp" in message


def test_migration_steps_are_only_appended() -> None:
    # A released step never changes: a schema at version n must mean the same tables everywhere.
    assert len(MIGRATIONS) == SCHEMA_VERSION
    assert "CREATE TABLE message_log" in MIGRATIONS[0]


def test_processes_starting_together_migrate_once(pg_base_url: str, pg_schema: str) -> None:
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            PostgresStore(pg_base_url, schema=pg_schema).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(pg_base_url) as conn:
        versions = [r[0] for r in conn.execute(f'SELECT version FROM "{pg_schema}".schema_version')]
    assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))


def test_the_password_is_never_shown(pg_schema: str, caplog: pytest.LogCaptureFixture) -> None:
    url = (
        f"postgresql://eki:s3cr%40t-pw@127.0.0.1:5432/no_such_database_here?schema={pg_schema}&pool_timeout=1"
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as failed:
        PostgresStore(url)
    for shown in (str(failed.value), repr(failed.value), caplog.text):
        assert "s3cr" not in shown
    assert "eki:***@127.0.0.1" in str(failed.value)
    assert failed.value.__cause__ is None or "s3cr" not in str(failed.value.__cause__)


def test_the_repr_masks_the_password(pg_url: str) -> None:
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@", 1)
    store = PostgresStore(url)  # trust auth: the password is not checked
    try:
        assert "hunter2" not in repr(store)
        assert "postgres:***@" in repr(store) and "hunter2" not in store.url
    finally:
        store.close()


def test_settings_do_not_show_the_store_url() -> None:
    from eki_whatsapp import Settings

    settings = Settings(_env_file=None, whatsapp_store_url="postgresql://bot:hunter2@db/app")
    assert "hunter2" not in repr(settings)


def test_a_bad_schema_name_names_the_setting() -> None:
    with pytest.raises(StoreError, match=r"schema='Robert\); DROP'"):
        PostgresStore("postgresql://postgres@127.0.0.1/test?schema=Robert); DROP")


def test_an_unknown_store_url_is_shown_without_its_password() -> None:
    from eki_whatsapp.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        open_store("mysql://bot:hunter2@db/app")
    assert "hunter2" not in str(refused.value) and "postgresql://" in str(refused.value)


def test_pool_settings_come_from_the_url(pg_url: str) -> None:
    store = PostgresStore(f"{pg_url}&pool_min=2&pool_max=3&pool_timeout=2.5")
    try:
        stats = store._pool.get_stats()
        assert (stats["pool_min"], stats["pool_max"]) == (2, 3)
        assert store._pool.timeout == 2.5
    finally:
        store.close()


def test_a_forked_child_opens_its_own_pool(pg_url: str) -> None:
    import multiprocessing

    store = PostgresStore(pg_url)
    try:
        store.log_outbound(outbound("wamid.PARENT"))
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_log_from_child, args=(store,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert store.get_message("meta", "wamid.CHILD") is not None
        assert store.get_message("meta", "wamid.PARENT") is not None  # the parent's pool still works
    finally:
        store.close()


def _log_from_child(store: PostgresStore) -> None:
    store.log_outbound(outbound("wamid.CHILD"))
    store.close()
