"""The admin (the WhatsApp log is at /admin/eki_whatsapp_django/whatsapplog/) and the webhook."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhook/whatsapp/", include("eki_whatsapp_django.urls")),
]
