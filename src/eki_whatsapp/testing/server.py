"""``serve_bot``: a bot's webhook on a local port, on the standard library's HTTP server.

For tests, the offline demo and ``eki-whatsapp serve``; in production put the bot behind a real
server through an adapter (Django, Flask) or any WSGI/ASGI app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..webhook import WebhookRequest
from ._http import LocalServer, RawRequest, Reply

if TYPE_CHECKING:
    from ..bot import Bot

__all__ = ["BotServer", "serve_bot"]


class BotServer(LocalServer):
    """A running webhook for ``bot``. ``.url`` is the webhook URL to configure or post to."""

    def __init__(self, bot: Bot, host: str = "127.0.0.1", port: int = 0, *, path: str = "/webhook") -> None:
        self.bot = bot
        self.path = "/" + path.lstrip("/")
        # a little above the bot's own limit so that the bot answers 413 itself
        limit = bot.settings.whatsapp_max_body_bytes + 1024
        super().__init__(self._handle, host, port, max_body=limit)

    @property
    def url(self) -> str:
        """The webhook URL (``http://127.0.0.1:<port>/webhook``); any path reaches the bot."""
        return self.base_url + self.path

    def _handle(self, raw: RawRequest) -> Reply:
        target = raw.path + (f"?{raw.query}" if raw.query else "")
        request = WebhookRequest(raw.method, f"http://{raw.host}{target}", raw.headers, raw.query, raw.body)
        response = self.bot.handle(request)
        return Reply(response.status, dict(response.headers), response.body)

    def __repr__(self) -> str:
        return f"BotServer({self.url})"


def serve_bot(bot: Bot, host: str = "127.0.0.1", port: int = 0, *, path: str = "/webhook") -> BotServer:
    """Serve ``bot.handle`` over HTTP in a background thread; returns the running server.

    Every request becomes a :class:`~eki_whatsapp.WebhookRequest` with the raw body bytes,
    the full URL as received (``http://<Host header><path>?<query>``), all headers and the
    query; the :class:`~eki_whatsapp.WebhookResponse` is written back as is::

        with serve_bot(bot) as server:
            meta_text("Hola").post(server.url, secret=app_secret)

    ``port=0`` picks a free port (see ``server.port``). ``server.wait()`` blocks until closed.
    """
    return BotServer(bot, host, port, path=path)
