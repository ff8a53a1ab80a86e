"""An offline sandbox: fake Meta and Twilio APIs and a bot webhook on 127.0.0.1, wired together
exactly like production (signed webhooks in, real provider requests out, status webhooks back).

The demo, ``eki-whatsapp chat`` and ``eki-whatsapp serve --sandbox`` run on it::

    from eki_whatsapp.sandbox import Sandbox
    from eki_whatsapp.testing import meta_text

    with Sandbox() as sb:
        sb.post(meta_text("Hola", sender="5215512345678"))
        sb.settle()
        print(sb.graph.sent[-1].text)        # the bot's reply, as the fake Graph API received it
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from .bot import Bot
from .settings import Settings
from .testing import FakeGraphAPI, FakeTwilioAPI, Payload, serve_bot
from .testing.server import BotServer

SANDBOX_APP_SECRET = "sandbox-meta-app-secret"
SANDBOX_VERIFY_TOKEN = "sandbox-verify-token"
WEBHOOK_PATH = "/webhook/whatsapp/"
_NO_STATUS = ("read", "typing")  # mark-as-read and typing requests have no statuses


class Sandbox:
    """Both fake provider APIs plus the bot's webhook, started together.

    Args:
        build: makes the bot from the sandbox's settings (default: a plain ``Bot``).
        store_url: ``WHATSAPP_STORE_URL`` for the bot (default: a private in-memory store).
        settings: more settings (lower-case names), e.g. ``{"whatsapp_meta_free_allowance": 1000}``.
        host, port: where the webhook listens (``port=0``: any free port).
    """

    def __init__(
        self,
        build: Callable[[Settings], Bot] | None = None,
        *,
        store_url: str = "memory://",
        settings: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._build = build or Bot
        self._store_url = store_url
        self._extra = dict(settings or {})
        self._host = host
        self._port = port
        self.graph: FakeGraphAPI
        self.twilio: FakeTwilioAPI
        self.bot: Bot
        self.server: BotServer
        self._client: httpx.Client | None = None

    def start(self) -> Sandbox:
        self.graph = FakeGraphAPI(app_secret=SANDBOX_APP_SECRET)
        self.twilio = FakeTwilioAPI()
        fields: dict[str, Any] = {
            "whatsapp_provider": "dual",
            "meta_verify_token": SANDBOX_VERIFY_TOKEN,
            "whatsapp_store_url": self._store_url,
            **self.graph.settings_fields(),
            **self.twilio.settings_fields(),
        }
        fields.update(self._extra)
        self.settings = Settings(_env_file=None, **fields)
        self.bot = self._build(self.settings)
        self.server = serve_bot(self.bot, self._host, self._port, path=WEBHOOK_PATH)
        # statuses of sent messages come back to the bot's webhook, signed
        self.graph.webhook_url = self.server.url
        self.twilio.webhook_url = self.server.url
        self._client = httpx.Client(timeout=30.0)
        return self

    @property
    def url(self) -> str:
        """The bot's webhook URL."""
        return self.server.url

    def post(self, payload: Payload) -> httpx.Response:
        """POST a payload to the webhook over HTTP, signed as its provider would sign it."""
        secret = SANDBOX_APP_SECRET if payload.provider == "meta" else self.twilio.auth_token
        return payload.post(self.server.url, secret=secret, client=self._client)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until handlers finished and every status webhook was delivered and handled
        (replies cause statuses, statuses may cause more work: repeat until nothing moves)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self._activity()
            self.bot.drain(timeout)
            self.graph.flush(timeout)
            self.twilio.flush(timeout)
            self.bot.drain(timeout)
            if self._activity() == before and not self._awaiting_statuses():
                return
            if self._awaiting_statuses():
                time.sleep(0.005)  # the fake queues statuses just after writing its response

    def _awaiting_statuses(self) -> bool:
        for fake in (self.graph, self.twilio):
            if fake.auto_status and any(not m.statuses and m.type not in _NO_STATUS for m in fake.sent):
                return True
        return False

    def _activity(self) -> tuple[int, ...]:
        return (
            len(self.graph.sent),
            len(self.twilio.sent),
            len(self.graph.webhooks),
            len(self.twilio.webhooks),
        )

    def close(self) -> None:
        for closer in (self.server.close, self.graph.close, self.twilio.close, self.bot.close):
            try:
                closer()
            except Exception:  # noqa: S112 - best effort on shutdown
                continue
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
