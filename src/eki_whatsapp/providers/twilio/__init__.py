"""Twilio Programmable Messaging (WhatsApp), end to end: everything that knows Twilio's wire format.

* :mod:`.webhook` — recognise Twilio's requests (form, GET, JSON), ``X-Twilio-Signature`` with
  port variants, token rotation and the public URL, ``bodySHA256`` (:class:`TwilioWebhook`);
* :mod:`.parse` — webhook parameters → events;
* :mod:`.send` — :class:`Twilio`, sending through the Messages API;
* :mod:`.render` — what Twilio can carry, and each message as Messages API form fields;
* :mod:`.content` — Content Templates and the numbered-text rendering of buttons and lists;
* :mod:`.content_api` — the Content API requests (session content, templates);
* :mod:`.templates` — managed templates as Content plus a WhatsApp approval request;
* :mod:`.media` — downloading inbound media;
* :mod:`.errors` — Twilio's error codes → the typed errors;
* :mod:`.doctor` — the checks of ``eki-whatsapp doctor``.

The wire facts all of it relies on are in docs/wire.md §7-9. ``Twilio`` is imported on first
use so that reading webhooks does not import httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .content import numbered_text
from .webhook import TwilioWebhook

if TYPE_CHECKING:
    from .send import Twilio

__all__ = ["Twilio", "TwilioWebhook", "numbered_text"]

NAME = "twilio"


def __getattr__(name: str) -> Any:
    if name == "Twilio":
        from .send import Twilio

        return Twilio
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
