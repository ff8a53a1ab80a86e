"""Flask adapter for eki-whatsapp: a blueprint that hands webhooks to a :class:`~eki_whatsapp.Bot`,
and a support console (:func:`console_blueprint`).

Example::

    from flask import Flask
    from eki_whatsapp import Bot
    from eki_whatsapp_flask import whatsapp_blueprint

    app = Flask(__name__)
    bot = Bot()
    app.register_blueprint(whatsapp_blueprint(bot), url_prefix="/webhook/whatsapp")

Twilio signs the public URL: behind a proxy, wrap the app in ``werkzeug.middleware.proxy_fix.ProxyFix``
(so ``request.url`` is the public one) or set ``WHATSAPP_WEBHOOK_URL``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from flask.wrappers import Request

from eki_whatsapp import Bot, WebhookRequest, WebhookResponse

from .console import console_blueprint

__version__ = "0.1.0"
__all__ = [
    "__version__",
    "console_blueprint",
    "current_bot",
    "to_flask_response",
    "to_webhook_request",
    "whatsapp_blueprint",
]

EXTENSION = "eki_whatsapp"


def to_webhook_request(req: Request) -> WebhookRequest:
    """The core's view of a Flask request (raw body bytes, URL as received)."""
    return WebhookRequest(
        method=req.method,
        url=req.url,
        headers=list(req.headers.items()),
        query=req.args.to_dict(flat=False),
        body=req.get_data(cache=True),
    )


def to_flask_response(response: WebhookResponse) -> Response:
    """A Flask response with the core response's status, headers and body."""
    return Response(response.body, status=response.status, headers=dict(response.headers))


def whatsapp_blueprint(bot: Bot | None = None, *, name: str = "eki_whatsapp") -> Blueprint:
    """A blueprint answering both providers' webhooks at its root (with or without trailing slash).

    Args:
        bot: the bot; default: ``Bot()`` from the environment / ``.env``.
        name: the blueprint name (register two bots under two names).

    The bot is also available as ``current_app.extensions["eki_whatsapp"]`` (:func:`current_bot`).
    """
    target = bot if bot is not None else Bot()
    blueprint = Blueprint(name, __name__)

    @blueprint.record_once
    def _register(state: BlueprintSetupState) -> None:
        state.app.extensions.setdefault(EXTENSION, target)

    def webhook() -> Response:
        return to_flask_response(target.handle(to_webhook_request(request)))

    blueprint.add_url_rule("/", "webhook", webhook, methods=["GET", "POST"], strict_slashes=False)
    return blueprint


def current_bot() -> Bot:
    """The bot of the (first) WhatsApp blueprint registered on the current app."""
    bot = current_app.extensions.get(EXTENSION)
    if not isinstance(bot, Bot):
        raise RuntimeError("no WhatsApp blueprint is registered on this app: call whatsapp_blueprint(bot)")
    return bot
