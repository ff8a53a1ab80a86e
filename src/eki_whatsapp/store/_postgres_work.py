"""The PostgreSQL store's durable handling: claiming work (leases, ``FOR UPDATE SKIP LOCKED``),
finishing, listing and retrying it (rules: "Durable handling" in :mod:`eki_whatsapp.store.rules`)."""

# ruff: noqa: S608  (table and column names come from this module's constants, never from input)
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import rules
from ._postgres_batch import rows_of
from ._postgres_values import _ROW_COLUMNS, _STATUS_COLUMNS, _WORK_COLUMNS, PostgresPart, _dt
from .base import Lease, WorkItem, WorkOutcome, as_utc

if TYPE_CHECKING:
    import psycopg
    from typing_extensions import Unpack

#: Per table letter of a work id (rules.work_id): the table, its key, what a work item reads.
_WORK_TABLES = {
    "m": ("message_log", "id", f"{_ROW_COLUMNS}, {_WORK_COLUMNS}"),
    "s": ("status_log", "seq", f"seq, {_STATUS_COLUMNS}, {_WORK_COLUMNS}"),
}
# rules.claimable, in SQL (the parameter is `now` twice).
_CLAIMABLE = (
    "handling IN ('pending', 'failed') AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s) "
    "AND (lease_until IS NULL OR lease_until <= %(now)s)"
)


#: The columns of one outcome in finish_works' VALUES: the row's key, the lease's owner, the
#: state, when to retry, the error.
_OUTCOME_TYPES = ("bigint", "text", "text", "timestamptz", "text")


def _target(work_id: str) -> tuple[str, str, str, str, int] | None:
    """What a work id names: its table letter, table, key column, columns read, key."""
    ref = rules.parse_work_id(work_id)
    return None if ref is None else (ref[0], *_WORK_TABLES[ref[0]], ref[1])


class PostgresWork(PostgresPart):
    """Durable handling, for :class:`~eki_whatsapp.store.postgres.PostgresStore`."""

    def _work_item(self, table: str, r: Sequence[Any]) -> WorkItem:
        """A work item from a row read with ``_WORK_TABLES[table]``'s columns."""
        if table == "m":
            entry, status, created, work = self._row(r[:20]), None, r[13], r[20:]
        else:
            entry, status, created, work = None, self._status(r[1:9]), r[4], r[9:]
        handling = (*work[:3], _dt(work[3]), _dt(work[4]), work[5])
        return rules.work_item(f"{table}{r[0]}", entry, status, as_utc(created), handling)

    def claim_work(self, work_id: str, lease: Lease, *, now: datetime) -> WorkItem | None:
        if (target := _target(work_id)) is None:
            return None
        table, name, column, read, key = target
        # One UPDATE: the row lock makes it a compare-and-set (a second claimer waits, then sees
        # the first one's lease in the WHERE and changes nothing).
        row = self._execute(
            f"UPDATE {name} SET lease_owner=%(owner)s, lease_until=%(until)s, attempts=attempts+1 "
            f"WHERE {column}=%(key)s AND {_CLAIMABLE} RETURNING {read}",
            {"owner": lease.owner, "until": as_utc(lease.until), "key": key, "now": as_utc(now)},
        )
        return None if row is None else self._work_item(table, row)

    def claim_due(
        self, lease: Lease, *, now: datetime, max_attempts: int, limit: int = 100
    ) -> list[WorkItem]:
        now = as_utc(now)
        claimed: list[WorkItem] = []
        for table, (name, column, read) in _WORK_TABLES.items():
            with self._tx() as conn:
                # Rows another sweeper is claiming right now are skipped, not waited for (SKIP
                # LOCKED): each piece of work goes to one of them. The rows locked here are then
                # either dead (rules.dies: their last attempt's worker died) or claimed.
                rows = conn.execute(
                    f"SELECT {column}, attempts, lease_until FROM {name} WHERE {_CLAIMABLE} "
                    f"ORDER BY {column} LIMIT %(limit)s FOR UPDATE SKIP LOCKED".encode(),
                    {"now": now, "limit": limit},
                ).fetchall()
                due: list[int] = []
                for key, attempts, lease_until in rows:
                    if rules.dies(attempts, max_attempts, lease_until, now):
                        conn.execute(
                            f"UPDATE {name} SET handling='dead', lease_owner=NULL, lease_until=NULL, "
                            f"last_error=%s WHERE {column}=%s".encode(),
                            (rules.died_error(attempts), key),
                        )
                    else:
                        due.append(key)
                if due:
                    claimed.extend(
                        self._work_item(table, r)
                        for r in conn.execute(
                            f"UPDATE {name} SET lease_owner=%s, lease_until=%s, attempts=attempts+1 "
                            f"WHERE {column} = ANY(%s) RETURNING {read}".encode(),
                            (lease.owner, as_utc(lease.until), due),
                        ).fetchall()
                    )
        claimed.sort(key=lambda w: w.created_at)
        return claimed[:limit]

    def finish_work(self, work_id: str, owner: str, **outcome: Unpack[WorkOutcome]) -> bool:
        if (target := _target(work_id)) is None:
            return False
        _, name, column, _, key = target
        state = rules.finished_state(outcome)
        # Committed without waiting for the disk (synchronous_commit off for this one statement,
        # through set_config in its own transaction): an outcome lost with a server crash only
        # means the work runs again when its lease expires, and its sends carry idempotency
        # keys. The webhook's acks, which must not be lost, keep waiting for theirs — and wait
        # less, with half the disk flushes.
        with self._conn() as conn:
            cur = conn.execute(
                f"UPDATE {name} SET handling=%s, lease_owner=NULL, lease_until=NULL, "
                f"next_attempt_at=%s, last_error=%s WHERE {column}=%s AND lease_owner=%s "
                "AND handling IN ('pending', 'failed') "
                "AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
                (state, _dt(outcome.get("retry_at")), outcome.get("error"), key, owner),
            )
            return cur.rowcount > 0

    def finish_works(self, outcomes: Sequence[tuple[str, str, WorkOutcome]]) -> list[bool]:
        """:meth:`finish_work` for several attempts (``(work_id, owner, outcome)``): one UPDATE
        per table for all of them (not waiting for the disk either, as :meth:`finish_work`);
        whether each changed its row."""
        changed = [False] * len(outcomes)
        waiting = [
            (i, ref) for i, (work_id, _, _) in enumerate(outcomes) if (ref := rules.parse_work_id(work_id))
        ]
        with self._conn() as conn:
            while waiting:
                # A work id met twice (finished twice) waits for the next round, so it finds the
                # row as the first outcome left it, as one call after the other would.
                batch: dict[tuple[str, int], int] = {}  # (table, key) -> its outcome's index
                later: list[tuple[int, tuple[str, int]]] = []
                for i, ref in waiting:
                    if ref in batch:
                        later.append((i, ref))
                    else:
                        batch[ref] = i
                for table in _WORK_TABLES:
                    rows = {key: i for (t, key), i in batch.items() if t == table}
                    if rows:
                        updates = [(key, *outcomes[i][1:]) for key, i in rows.items()]
                        for key in self._finish_rows(conn, table, updates):
                            changed[rows[key]] = True
                waiting = later
        return changed

    @staticmethod
    def _finish_rows(
        conn: psycopg.Connection[Any], table: str, updates: Sequence[tuple[int, str, WorkOutcome]]
    ) -> list[int]:
        """One UPDATE for the outcomes (``(key, owner, outcome)``) of distinct rows of one
        table; the keys of the rows it changed."""
        import psycopg

        name, column, _ = _WORK_TABLES[table]
        params: list[Any] = []
        for key, owner, outcome in updates:
            retry_at, error = _dt(outcome.get("retry_at")), outcome.get("error")
            params += [key, owner, rules.finished_state(outcome), retry_at, error]
        values = rows_of(len(updates), _OUTCOME_TYPES)
        sql = (
            f"UPDATE {name} AS t SET handling=v.state, lease_owner=NULL, lease_until=NULL, "
            "next_attempt_at=v.retry_at, last_error=v.error "
            f"FROM (VALUES {values}) AS v(key, owner, state, retry_at, error) "
            f"WHERE t.{column}=v.key AND t.lease_owner=v.owner AND t.handling IN ('pending', 'failed') "
            "AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL "
            f"RETURNING t.{column}"
        )
        # A raw cursor ($n placeholders): psycopg parses a statement of more than 50 %s afresh on
        # every call.
        return [row[0] for row in psycopg.RawCursor(conn).execute(sql.encode(), params)]

    def get_work(self, work_id: str) -> WorkItem | None:
        if (target := _target(work_id)) is None:
            return None
        table, name, column, read, key = target
        rows = self._query(
            f"SELECT {read} FROM {name} WHERE {column}=%s AND handling IS NOT NULL",
            (key,),
        )
        return self._work_item(table, rows[0]) if rows else None

    def pending_work(self, *, limit: int = 100) -> list[WorkItem]:
        items: list[WorkItem] = []
        for table, (name, column, read) in _WORK_TABLES.items():
            rows = self._query(
                f"SELECT {read} FROM {name} WHERE handling IN ('pending', 'failed', 'dead') "
                f"ORDER BY {column} LIMIT %s",
                (limit,),
            )
            items.extend(self._work_item(table, r) for r in rows)
        items.sort(key=lambda w: w.created_at)
        return items[:limit]

    def retry_work(self, work_id: str | None = None) -> int:
        targets: list[tuple[str, str, tuple[Any, ...]]] = []
        if work_id is None:
            targets = [(name, "handling IN ('failed', 'dead')", ()) for name, _, _ in _WORK_TABLES.values()]
        else:
            ref = rules.parse_work_id(work_id)
            if ref is None:
                return 0
            name, column, _ = _WORK_TABLES[ref[0]]
            targets = [(name, f"{column}=%s AND handling IN ('pending', 'failed', 'dead')", (ref[1],))]
        changed = 0
        with self._tx() as conn:
            for name, where, params in targets:
                cur = conn.execute(
                    f"UPDATE {name} SET handling='pending', attempts=0, lease_owner=NULL, "
                    f"lease_until=NULL, next_attempt_at=NULL WHERE {where} RETURNING 1".encode(),
                    params,
                )
                changed += len(cur.fetchall())  # (rowcount is not known yet in a pipeline)
        return changed
