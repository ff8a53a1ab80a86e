"""Eki, the education assistant, on WhatsApp (Meta Cloud API and Twilio) with Flask.

Run it::

    cp .env.example .env          # fill in your credentials
    flask --app app run --port 8000
    # or: gunicorn "app:create_app()" --bind 0.0.0.0:8000 --worker-class gthread --threads 8

and point both providers at ``https://<your-host>/webhook/whatsapp/``.
"""

from __future__ import annotations

import logging
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from eki_whatsapp import Bot
from eki_whatsapp.examples import eki
from eki_whatsapp_flask import whatsapp_blueprint


def create_app() -> Flask:
    """The Flask app: Eki answering on ``/webhook/whatsapp/``, the log in ``WHATSAPP_STORE_URL``."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    bot = Bot()  # settings from the environment and .env
    eki.register(bot)
    app = Flask(__name__)
    if os.environ.get("TRUST_PROXY") == "1":
        # Behind one reverse proxy (nginx, a tunnel): trust its X-Forwarded-Proto/Host so that
        # request.url is the public URL Twilio signed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.register_blueprint(whatsapp_blueprint(bot), url_prefix="/webhook/whatsapp")

    @app.get("/")
    def index() -> str:
        return "Eki is listening on /webhook/whatsapp/"

    return app


if __name__ == "__main__":
    create_app().run(port=int(os.environ.get("PORT", "8000")))
