"""URLs of the test site: the admin and the webhook, as in a real project (plus the admin's static
files, so the browser tests and their screenshots look like the real admin under gunicorn)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhook/whatsapp/", include("eki_whatsapp_django.urls")),
    path("static/<path:path>", serve, {"insecure": True}),
]
