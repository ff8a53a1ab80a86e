"""WSGI entry point of the test site (gunicorn ekidj_site.wsgi:application)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ekidj_site.settings")
application = get_wsgi_application()
