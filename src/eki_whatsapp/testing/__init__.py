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

from ._fake import FakeProviderAPI, RecordedRequest, SentMessage, WebhookDelivery
from .fake_graph import FakeGraphAPI, StoredMedia
from .fake_openai import FakeOpenAI, ModelRequest, Step, strict_schema_problems
from .fake_twilio import FakeTwilioAPI, TwilioMedia
from .payloads import (
    DEFAULT_DISPLAY_PHONE_NUMBER,
    DEFAULT_META_USER,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TWILIO_ACCOUNT_SID,
    DEFAULT_TWILIO_NUMBER,
    DEFAULT_TWILIO_USER,
    DEFAULT_WABA_ID,
    MetaOptions,
    Payload,
    TwilioOptions,
    meta_audio,
    meta_batch,
    meta_button,
    meta_button_reply,
    meta_change,
    meta_contacts,
    meta_document,
    meta_image,
    meta_list_reply,
    meta_location,
    meta_message,
    meta_order,
    meta_reaction,
    meta_status,
    meta_sticker,
    meta_system,
    meta_text,
    meta_unsupported,
    meta_video,
    new_message_sid,
    new_wamid,
    twilio_button,
    twilio_list_reply,
    twilio_location,
    twilio_media,
    twilio_message,
    twilio_status,
    twilio_text,
)
from .server import BotServer, serve_bot

__all__ = [
    "DEFAULT_DISPLAY_PHONE_NUMBER",
    "DEFAULT_META_USER",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_TWILIO_ACCOUNT_SID",
    "DEFAULT_TWILIO_NUMBER",
    "DEFAULT_TWILIO_USER",
    "DEFAULT_WABA_ID",
    "BotServer",
    "FakeGraphAPI",
    "FakeOpenAI",
    "FakeProviderAPI",
    "FakeTwilioAPI",
    "MetaOptions",
    "ModelRequest",
    "Payload",
    "RecordedRequest",
    "SentMessage",
    "Step",
    "StoredMedia",
    "TwilioMedia",
    "TwilioOptions",
    "WebhookDelivery",
    "meta_audio",
    "meta_batch",
    "meta_button",
    "meta_button_reply",
    "meta_change",
    "meta_contacts",
    "meta_document",
    "meta_image",
    "meta_list_reply",
    "meta_location",
    "meta_message",
    "meta_order",
    "meta_reaction",
    "meta_status",
    "meta_sticker",
    "meta_system",
    "meta_text",
    "meta_unsupported",
    "meta_video",
    "new_message_sid",
    "new_wamid",
    "serve_bot",
    "strict_schema_problems",
    "twilio_button",
    "twilio_list_reply",
    "twilio_location",
    "twilio_media",
    "twilio_message",
    "twilio_status",
    "twilio_text",
]
