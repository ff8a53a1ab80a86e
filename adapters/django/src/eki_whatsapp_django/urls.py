"""Mount the webhook: ``path("webhook/whatsapp/", include("eki_whatsapp_django.urls"))``.

The URL name is ``eki_whatsapp:webhook``. Configure Meta and Twilio with the full URL,
trailing slash included.
"""

from __future__ import annotations

from django.urls import path

from .views import webhook

app_name = "eki_whatsapp"

urlpatterns = [path("", webhook, name="webhook")]
