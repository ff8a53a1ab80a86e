"""How many forks this process descends from: noticing a fork (gunicorn ``--preload`` workers)
on a hot path without ``os.getpid()``, a system call on every request."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

__all__ = ["forks", "in_child"]

_count = 0


def _forked() -> None:
    global _count
    _count += 1


os.register_at_fork(after_in_child=_forked)


def forks() -> int:
    """How many times this process, or a parent it was copied from, was forked (0 in the first):
    a value remembered before a fork differs from this one after it."""
    return _count


def in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every child forked from now on (to start afresh: the
    parent's threads and what they hold stayed behind), without keeping its object alive."""
    ref = weakref.WeakMethod(method)
    os.register_at_fork(after_in_child=lambda: _call(ref))


def _call(ref: weakref.WeakMethod[Callable[[], None]]) -> None:
    method = ref()
    if method is not None:
        method()
