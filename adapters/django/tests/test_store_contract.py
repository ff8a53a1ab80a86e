"""The store contract shipped in ``eki_whatsapp.testing`` runs on the Django ORM store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eki_whatsapp.testing.store_contract import StoreContract
from eki_whatsapp_django import DjangoStore


@pytest.mark.django_db(transaction=True)
class TestDjangoStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[DjangoStore]:
        store = DjangoStore()
        yield store
        store.close()
