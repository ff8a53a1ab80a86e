"""SQL the SQLite and PostgreSQL stores share, with the dialect's placeholder (``?`` or ``%s``)."""

from __future__ import annotations

from typing import Any

from .base import LogQuery

__all__ = ["log_filter"]


def log_filter(query: LogQuery, mark: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (``""`` when there is no filter) and its parameters for
    :meth:`~.base.Store.list_log`'s filters over ``message_log``."""
    where: list[str] = []
    params: list[Any] = []
    if (provider := query.get("provider")) is not None:
        where.append(f"provider={mark}")
        params.append(provider)
    if (direction := query.get("direction")) is not None:
        where.append(f"direction={mark}")
        params.append(direction)
    if (user := query.get("user")) is not None:
        where.append(f"((direction='in' AND sender={mark}) OR (direction='out' AND recipient={mark}))")
        params.extend([user, user])
    return (" WHERE " + " AND ".join(where) if where else ""), params
