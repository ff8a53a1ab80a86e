"""Django settings of the adapter's test site (also served by gunicorn in the end-to-end test)."""

from __future__ import annotations

import os
import tempfile

import django

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost", "bot.example.com", "public.example.com"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "ekidj_site.urls"
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
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
# A file, not :memory:, so that threads (background handlers, concurrent deliveries) see one
# database and wait for each other's write locks instead of failing.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EKIDJ_DB", os.path.join(tempfile.gettempdir(), "ekidj.sqlite3")),
        "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"ekidj-test-{os.getpid()}.sqlite3")},
        "OPTIONS": {"timeout": 20, **({"transaction_mode": "IMMEDIATE"} if django.VERSION >= (5, 1) else {})},
    }
}
if os.environ.get("EKI_DJANGO_DB") == "postgres":
    # The adapter's tests on PostgreSQL (`make test` runs them a second time so): the local server,
    # and a test database of this run's own, so parallel runs never meet.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("EKIDJ_PG_NAME", "test"),
            "HOST": os.environ.get("EKIDJ_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("EKIDJ_PG_PORT", "5432"),
            "USER": os.environ.get("EKIDJ_PG_USER", "postgres"),
            "TEST": {"NAME": f"ekidj_test_{os.getpid()}"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_URL = "/static/"

# Celery (WHATSAPP_RUNNER=celery in the e2e test): the broker from the environment.
CELERY_BROKER_URL = os.environ.get("EKIDJ_CELERY_BROKER_URL")
CELERY_TASK_IGNORE_RESULT = True

# WhatsApp: no .env; everything else comes from the environment (the e2e test sets it).
EKI_WHATSAPP_ENV_FILE = None
EKI_WHATSAPP_BOT = os.environ.get("EKIDJ_BOT", "ekidj_site.bot.setup")
WHATSAPP_PROVIDER = os.environ.get("WHATSAPP_PROVIDER", "dual")
META_WHATSAPP_TOKEN = os.environ.get("META_WHATSAPP_TOKEN", "meta-token")
META_PHONE_NUMBER_ID = os.environ.get("META_PHONE_NUMBER_ID", "106540352242922")
META_VERIFY_TOKEN = os.environ.get("META_VERIFY_TOKEN", "verify-me")
META_APP_SECRET = os.environ.get("META_APP_SECRET", "e1d2c3b4a5968778695a4b3c2d1e0f00")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef")
TWILIO_WHATSAPP_NUMBER = os.environ.get("TWILIO_WHATSAPP_NUMBER", "whatsapp:+14155238886")
WHATSAPP_INLINE_HANDLERS = os.environ.get("WHATSAPP_INLINE_HANDLERS", "true") == "true"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"eki_whatsapp": {"handlers": ["console"], "level": "WARNING"}},
}
