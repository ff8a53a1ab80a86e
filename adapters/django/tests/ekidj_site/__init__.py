# The project's Celery app is loaded with the project, as in Celery's Django guide, so that the
# web side sends with it (WHATSAPP_RUNNER = "celery"). Celery is optional: the `celery` extra.
try:
    from .celery import app as celery_app
except ImportError:
    celery_app = None

__all__ = ["celery_app"]
