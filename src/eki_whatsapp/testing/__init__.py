"""Local fakes for tests, benchmarks and the offline demo.

* **Payload builders** — byte-exact, signable inbound webhooks of both providers
  (:func:`meta_text`, :func:`twilio_text`, ...): ``bot.handle(meta_text("Hola").request(secret=...))``.
* **Fake provider APIs** — :class:`FakeGraphAPI` (Meta Cloud API) and :class:`FakeTwilioAPI`,
  real HTTP servers on 127.0.0.1 that check auth, answer in the real shapes, record every
  request, fail on command and post signed status webhooks back to your bot.
* :class:`FakeOpenAI` — a scripted OpenAI-compatible model server (Chat Completions and
  Responses) on 127.0.0.1, for the agent.
* :func:`serve_bot` — a bot's webhook on a local port.

Only the standard library and httpx are used, so this works from an installed wheel.
See ``docs/testing.md``.
"""

from __future__ import annotations

from . import payloads
from ._fake import FakeProviderAPI, RecordedRequest, SentMessage, WebhookDelivery
from .fake_graph import FakeGraphAPI, StoredMedia
from .fake_openai import FakeOpenAI, ModelRequest, Step, strict_schema_problems
from .fake_twilio import FakeTwilioAPI, TwilioMedia
from .payloads import *  # noqa: F403  (the builders: their names are payloads.__all__)
from .server import BotServer, serve_bot

__all__ = [
    "BotServer",
    "FakeGraphAPI",
    "FakeOpenAI",
    "FakeProviderAPI",
    "FakeTwilioAPI",
    "ModelRequest",
    "RecordedRequest",
    "SentMessage",
    "Step",
    "StoredMedia",
    "TwilioMedia",
    "WebhookDelivery",
    "serve_bot",
    "strict_schema_problems",
]
__all__ += payloads.__all__
