"""Settings of the Eki example project.

Django's own settings come from the environment (``DJANGO_*``); the WhatsApp settings
(``WHATSAPP_PROVIDER``, ``META_*``, ``TWILIO_*``, ``OPENAI_*``) are read by eki-whatsapp-django from
the environment and ``.env`` next to ``manage.py`` — or set them here with the same names.
"""

from __future__ import annotations

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "eki_whatsapp_django",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "eki_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "eki_site.wsgi.application"
# SQLite serves concurrent webhooks well when writers queue instead of failing: a busy timeout,
# and (Django 5.1+) transactions that take the write lock when they begin.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"timeout": 20, **({"transaction_mode": "IMMEDIATE"} if django.VERSION >= (5, 1) else {})},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

# Behind a reverse proxy that terminates TLS (nginx, a tunnel): trust its headers so that the
# webhook sees the public https URL Twilio signed. Or set WHATSAPP_WEBHOOK_URL instead.
if os.environ.get("DJANGO_TRUST_PROXY") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# --- WhatsApp -------------------------------------------------------------------------------
# Handlers: Eki's agent registered on the project's bot (ORM store, background handlers).
EKI_WHATSAPP_BOT = "eki_whatsapp.examples.eki.register"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "eki_whatsapp": {"handlers": ["console"], "level": "INFO"},
        "eki_whatsapp_django": {"handlers": ["console"], "level": "INFO"},
    },
}
