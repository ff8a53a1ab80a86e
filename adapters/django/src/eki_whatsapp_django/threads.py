"""Database-connection hygiene for work that runs outside Django's request cycle.

Django closes stale connections at the start and end of each request. Bot handlers run after the
webhook is answered, in the bot's worker threads, where nothing does that: a connection the
database has dropped (``CONN_MAX_AGE``, a server restart) would break the next handler.
:class:`DjangoExecutor` runs every task between two ``close_old_connections()`` calls, as Django
does around a request (slack-bolt's Django adapter does the same for its listeners).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import close_old_connections

P = ParamSpec("P")
T = TypeVar("T")


def with_fresh_connections(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn`` with stale DB connections closed before and after."""
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


class DjangoExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks never reuse a stale database connection.

    The default Django bot uses it for background handlers; pass one to your own bot with
    ``Bot(..., executor=DjangoExecutor(max_workers=8))`` (or use
    :func:`eki_whatsapp_django.create_bot`, which does).
    """

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` wrapped in :func:`with_fresh_connections`."""
        return super().submit(with_fresh_connections, fn, *args, **kwargs)
