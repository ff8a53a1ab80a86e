"""A bot built before the web server forks its workers (gunicorn --preload)."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from eki_whatsapp import MemoryStore
from eki_whatsapp.handling import Outcomes

from ..routing.fakes import FakeProvider
from .test_durable import LostRunner, make_bot, replies, says
from .test_outcomes import CountingStore

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="fork")


def test_a_bot_built_before_the_fork_sweeps_periodically_in_the_child() -> None:
    # The parent builds the bot and never serves; the forked worker does. Work whose thread
    # died in the worker must be found by that worker's periodic sweep.
    meta = FakeProvider("meta", "106540352242922")
    bot = make_bot(
        MemoryStore(),
        meta,
        whatsapp_sweep_interval_seconds=3600,  # the parent's sweeper waits: nothing held at the fork
        whatsapp_handler_lease_seconds=0.2,
    )
    pid = os.fork()
    if pid == 0:  # the worker: exit 0 only when its own sweeper handled the lost work
        signal.alarm(30)  # never hang the test run
        bot.settings.whatsapp_sweep_interval_seconds = 0.05
        runner, bot.runner = bot.runner, LostRunner()  # the first message's work dies with its thread
        says(bot, "hello", "wamid.FORK1")
        bot.runner = runner
        deadline = time.monotonic() + 10
        while not replies(meta) and time.monotonic() < deadline:
            time.sleep(0.02)
        os._exit(0 if replies(meta) == ["echo: hello"] else 1)
    _, status = os.waitpid(pid, 0)
    bot.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_outcomes_queued_in_the_parent_are_not_written_again_by_a_forked_child() -> None:
    # The parent writes its own queued outcomes (with their bookkeeping: a status's price); a
    # child that wrote them too would price a message twice.
    store = CountingStore()
    outcomes = Outcomes(store, size=1000, age=3600)
    outcomes.add("w1", "parent", {"error": None})
    outcomes.flush()  # the parent has written a queue before
    outcomes.add("w2", "parent", {"error": None})
    pid = os.fork()
    if pid == 0:  # exit 0 only when the child wrote its own outcome alone, with a thread of its own
        signal.alarm(30)
        outcomes._age = 0.01
        outcomes.add("c1", "child", {"error": None})
        deadline = time.monotonic() + 10
        while store.written != ["w1", "c1"] and time.monotonic() < deadline:
            time.sleep(0.005)
        os._exit(0 if store.written == ["w1", "c1"] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    outcomes.close()
    assert store.written == ["w1", "w2"]
