"""Django adapter for eki-whatsapp.

Add ``"eki_whatsapp_django"`` to ``INSTALLED_APPS``, run ``migrate``, and mount the webhook::

    urlpatterns = [
        path("admin/", admin.site.urls),
        path("webhook/whatsapp/", include("eki_whatsapp_django.urls")),
    ]

Register handlers in a function named by ``EKI_WHATSAPP_BOT`` (see :mod:`eki_whatsapp_django.conf`).
The public surface: :func:`whatsapp_view`, :func:`get_bot`, :func:`create_bot`, :func:`reset_bot`,
:func:`load_settings`, :class:`DjangoStore`, :class:`DjangoExecutor` and the
:class:`~eki_whatsapp_django.models.WhatsAppLog` model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .conf import create_bot, get_bot, load_settings, reset_bot
from .threads import DjangoExecutor
from .views import to_django_response, to_webhook_request, whatsapp_view

if TYPE_CHECKING:
    from .store import DjangoStore

__version__ = "0.1.0"

__all__ = [
    "DjangoExecutor",
    "DjangoStore",
    "__version__",
    "create_bot",
    "get_bot",
    "load_settings",
    "reset_bot",
    "to_django_response",
    "to_webhook_request",
    "whatsapp_view",
]


def __getattr__(name: str) -> Any:
    # The store imports the models, which need the app registry: load it on first use.
    if name == "DjangoStore":
        from .store import DjangoStore

        return DjangoStore
    raise AttributeError(f"module 'eki_whatsapp_django' has no attribute {name!r}")
