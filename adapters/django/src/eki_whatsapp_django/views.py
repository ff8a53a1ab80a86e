"""The webhook view: Django request → :class:`~eki_whatsapp.WebhookRequest` → ``bot.handle()`` →
Django response. Nothing else happens here.

The URL given to the bot is ``request.build_absolute_uri()``, which honours Django's proxy
settings (``SECURE_PROXY_SSL_HEADER``, ``USE_X_FORWARDED_HOST``, ``USE_X_FORWARDED_PORT``);
``WHATSAPP_WEBHOOK_URL`` overrides it for Twilio's signature check.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from eki_whatsapp import Bot, WebhookRequest, WebhookResponse

from .conf import get_bot


def to_webhook_request(request: HttpRequest) -> WebhookRequest:
    """The core's view of a Django request (raw body bytes, public URL)."""
    return WebhookRequest(
        method=request.method or "GET",
        url=request.build_absolute_uri(),
        headers=request.headers,
        query=dict(request.GET.lists()),
        body=request.body,
    )


def to_django_response(response: WebhookResponse) -> HttpResponse:
    """A Django response with the core response's status, headers and body."""
    out = HttpResponse(response.body, status=response.status)
    for name, value in response.headers.items():
        out[name] = value
    return out


def whatsapp_view(bot: Bot | Callable[[], Bot] | None = None) -> Callable[[HttpRequest], HttpResponse]:
    """A csrf-exempt view answering both providers' webhooks (GET challenge, POST events).

    Args:
        bot: the bot, or a function returning it; default: the project's bot
            (:func:`~eki_whatsapp_django.get_bot`, configured by ``EKI_WHATSAPP_BOT``).

    Example::

        urlpatterns = [path("hooks/wa/", whatsapp_view(my_bot))]
    """
    resolve: Callable[[], Bot]
    if bot is None:
        resolve = get_bot
    elif isinstance(bot, Bot):
        resolve = lambda: bot  # noqa: E731
    else:
        resolve = bot

    # Not atomic even with ATOMIC_REQUESTS: each event is committed before the answer.
    @csrf_exempt
    @transaction.non_atomic_requests
    def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
        return to_django_response(resolve().handle(to_webhook_request(request)))

    return whatsapp_webhook


#: The view for the project's bot (what ``eki_whatsapp_django.urls`` mounts).
webhook = whatsapp_view()
