"""An offline sandbox: fake Meta and Twilio APIs and a bot webhook on 127.0.0.1, wired together
exactly like production (signed webhooks in, real provider requests out, status webhooks back).

The demo, ``eki-whatsapp chat`` and ``eki-whatsapp serve --sandbox`` run on it::

    from eki_whatsapp.sandbox import Sandbox
    from eki_whatsapp.testing import meta_text

    with Sandbox() as sb:
        sb.post(meta_text("Hola", sender="5215512345678"))
        sb.settle()
        print(sb.graph.sent[-1].text)        # the bot's reply, as the fake Graph API received it

:class:`FakeProviders` is the same without the bot, for an app you run yourself (Django, Flask):
``eki-whatsapp sandbox --webhook URL`` starts it, prints the environment that points the app at
it, and sends signed messages to the app's webhook.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from .bot import Bot
from .settings import Settings
from .testing import FakeGraphAPI, FakeTwilioAPI, Payload, SentMessage, serve_bot
from .testing.server import BotServer

SANDBOX_APP_SECRET = "sandbox-meta-app-secret"
SANDBOX_VERIFY_TOKEN = "sandbox-verify-token"
WEBHOOK_PATH = "/webhook/whatsapp/"
_NO_STATUS = ("read", "typing")  # mark-as-read and typing requests have no statuses


def _replies(fakes: tuple[FakeGraphAPI, FakeTwilioAPI], seen: dict[str, int]) -> list[SentMessage]:
    """Messages the fakes accepted since ``seen`` (mark-as-read and typing left out); moves ``seen``."""
    new: list[SentMessage] = []
    for fake in fakes:
        sent = fake.sent
        new += [m for m in sent[seen.get(fake.provider, 0) :] if m.type not in _NO_STATUS]
        seen[fake.provider] = len(sent)
    return new


class FakeProviders:
    """Both fake provider APIs for an app that runs on its own (Django, Flask, ``serve``).

    Args:
        webhook_url: the app's webhook; status webhooks go there, and :meth:`post` sends there.
        host, graph_port, twilio_port: where the fakes listen (``0``: any free port). Fixed ports
            keep the printed environment valid from one run to the next.

    Example::

        with FakeProviders("http://127.0.0.1:8000/webhook/whatsapp/") as fakes:
            print(fakes.env())                       # put these in the app's environment
            fakes.post(meta_text("Hola"))            # signed as Meta would sign it
            print([m.text for m in fakes.wait_for_replies()])
    """

    def __init__(
        self,
        webhook_url: str | None = None,
        *,
        host: str = "127.0.0.1",
        graph_port: int = 0,
        twilio_port: int = 0,
    ) -> None:
        self.webhook_url = webhook_url
        self._host = host
        self._ports = (graph_port, twilio_port)
        self.graph: FakeGraphAPI
        self.twilio: FakeTwilioAPI
        self._seen: dict[str, int] = {}
        self._client: httpx.Client | None = None

    def start(self) -> FakeProviders:
        self.graph = FakeGraphAPI(
            app_secret=SANDBOX_APP_SECRET, webhook_url=self.webhook_url, host=self._host, port=self._ports[0]
        )
        try:
            self.twilio = FakeTwilioAPI(webhook_url=self.webhook_url, host=self._host, port=self._ports[1])
        except BaseException:
            self.graph.close()
            raise
        self._client = httpx.Client(timeout=30.0)
        return self

    def env(self) -> dict[str, str]:
        """The environment that points an app at these fakes (a development configuration)."""
        values = {
            "WHATSAPP_ENV": "development",
            "WHATSAPP_PROVIDER": "dual",
            "META_VERIFY_TOKEN": SANDBOX_VERIFY_TOKEN,
            **self.graph.env(),
            **self.twilio.env(),
        }
        if self.webhook_url:
            # Twilio signs the URL it calls; the app must check against the same one.
            values["WHATSAPP_WEBHOOK_URL"] = self.webhook_url
        return values

    def post(self, payload: Payload, url: str | None = None) -> httpx.Response:
        """POST ``payload`` to the app's webhook, signed with the fakes' secrets."""
        target = url or self.webhook_url
        if target is None:
            raise ValueError("no webhook URL: give FakeProviders(webhook_url) or post(payload, url)")
        secret = SANDBOX_APP_SECRET if payload.provider == "meta" else self.twilio.auth_token
        return payload.post(target, secret=secret, client=self._client)

    def wait_for_replies(self, timeout: float = 10.0, quiet: float = 0.5) -> list[SentMessage]:
        """Messages the app sent through the fakes since the last call: waits up to ``timeout``
        for the first, then until none came for ``quiet`` seconds."""
        fakes = (self.graph, self.twilio)
        replies = _replies(fakes, self._seen)
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            # The app answers from its own process: nothing to join, so poll briefly.
            time.sleep(0.05)
            more = _replies(fakes, self._seen)
            if more:
                replies += more
                last = time.monotonic()
            elif replies and time.monotonic() - last >= quiet:
                break
        return replies

    def close(self) -> None:
        for fake in (getattr(self, "graph", None), getattr(self, "twilio", None)):
            if fake is not None:
                fake.close()
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> FakeProviders:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


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
