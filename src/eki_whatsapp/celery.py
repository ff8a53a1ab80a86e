"""The Celery worker entry point: ``celery -A eki_whatsapp.celery worker`` (what
``eki-whatsapp worker`` runs).

``app`` is the Celery app of ``WHATSAPP_CELERY_APP`` or the one built from
``WHATSAPP_CELERY_BROKER_URL``, with the handling task registered; each worker process gets its
bot from ``WHATSAPP_BOT``. See :mod:`eki_whatsapp.runners.celery` and docs/deployment.md.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Built on first use (by `celery -A`), so importing this module needs no settings.
    if name == "app":
        from .runners.celery import worker_app

        return worker_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
