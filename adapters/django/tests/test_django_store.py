"""What only the ORM store has to get right: async callers, outer transactions, USE_TZ=False, the
unique constraints themselves, and being the store the project's bot uses."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from eki_whatsapp import InboundMessage, StatusUpdate
from eki_whatsapp.store import LogEntry
from eki_whatsapp_django import DjangoStore, get_bot
from eki_whatsapp_django.models import WhatsAppLog, WhatsAppStatus, WhatsAppWindow

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def message(message_id: str = "wamid.1", at: datetime = T0) -> InboundMessage:
    return InboundMessage(
        provider="meta",
        id=message_id,
        sender="16505551234",
        recipient="106540352242922",
        type="text",
        timestamp=at,
        raw={"id": message_id},
        text="hi",
    )


def delivered(message_id: str) -> StatusUpdate:
    return StatusUpdate(provider="meta", message_id=message_id, status="delivered", timestamp=T0, raw={})


@pytest.mark.django_db
def test_the_project_bot_uses_the_orm_store(settings: Any) -> None:
    settings.EKI_WHATSAPP_BOT = None
    assert isinstance(get_bot().store, DjangoStore)


@pytest.mark.django_db
def test_dedup_is_a_database_constraint() -> None:
    store = DjangoStore()
    assert store.record_inbound(message())
    with pytest.raises(IntegrityError), transaction.atomic():
        WhatsAppLog.objects.create(
            direction="in", provider="meta", message_id="wamid.1", type="text", created_at=T0, updated_at=T0
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        WhatsAppStatus.objects.create(provider="meta", message_id="x", status="read", timestamp=T0)
        WhatsAppStatus.objects.create(provider="meta", message_id="x", status="read", timestamp=T0)


@pytest.mark.django_db
def test_a_duplicate_inside_an_outer_transaction_leaves_it_usable() -> None:
    store = DjangoStore()
    with transaction.atomic():
        assert store.record_inbound(message("wamid.A"))
        assert not store.record_inbound(message("wamid.A"))
        assert store.record_inbound(message("wamid.B"))
    assert WhatsAppLog.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_are_recorded_once() -> None:
    store = DjangoStore()
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(store.record_inbound(message("wamid.RACE")))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert WhatsAppLog.objects.filter(message_id="wamid.RACE").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_store_works_from_async_code() -> None:
    """Async handlers reply from the event loop, where Django forbids ORM calls."""
    store = DjangoStore()

    async def handler() -> int:
        store.record_inbound(message("wamid.ASYNC"))
        return store.log_outbound(
            LogEntry(direction="out", provider="meta", type="text", message_id="wamid.R")
        )

    try:
        row_id = asyncio.run(handler())
    finally:
        store.close()
    assert WhatsAppLog.objects.get(pk=row_id).message_id == "wamid.R"
    assert WhatsAppLog.objects.filter(message_id="wamid.ASYNC").exists()


@pytest.mark.django_db(transaction=True)
def test_status_and_row_written_in_open_transactions_meet_after_commit() -> None:
    """Each writer re-applies statuses once its transaction commits, so the later one wins."""
    store = DjangoStore()
    with transaction.atomic():
        store.log_outbound(
            LogEntry(direction="out", provider="meta", type="text", message_id="wamid.T", status="accepted")
        )
        # The status is recorded "elsewhere" before the row's transaction commits.
        WhatsAppStatus.objects.create(provider="meta", message_id="wamid.T", status="read", timestamp=T0)
        assert WhatsAppLog.objects.get(message_id="wamid.T").status == "accepted"
    assert WhatsAppLog.objects.get(message_id="wamid.T").status == "read"


@pytest.mark.django_db
def test_without_use_tz_times_are_stored_naive_and_read_back_aware(settings: Any) -> None:
    settings.USE_TZ = False
    store = DjangoStore()
    store.record_inbound(message("wamid.TZ", at=T0))
    stored = WhatsAppWindow.objects.get().last_inbound_at
    assert stored.tzinfo is None and stored == T0.replace(tzinfo=None)
    assert store.last_inbound_at("meta", None, "16505551234") == T0
    row = store.get_message("meta", "wamid.TZ")
    assert row is not None and row.timestamp == T0
