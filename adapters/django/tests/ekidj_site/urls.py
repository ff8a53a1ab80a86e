"""URLs of the test site: the admin and the webhook, as in a real project."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhook/whatsapp/", include("eki_whatsapp_django.urls")),
]
