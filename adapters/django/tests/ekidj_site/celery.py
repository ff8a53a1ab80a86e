"""The test site's Celery app, as Celery's "First steps with Django" writes it: settings from
``CELERY_*`` Django settings, tasks found in the installed apps (``eki_whatsapp_django.tasks``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ekidj_site.settings")

app = Celery("ekidj_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
