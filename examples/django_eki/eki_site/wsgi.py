"""WSGI entry point: ``gunicorn eki_site.wsgi --worker-class gthread --threads 8``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eki_site.settings")
application = get_wsgi_application()
