"""Templates managed from code: define once, push to Meta and Twilio, track approval, send by name.

* :class:`TemplateDefinition` — name, language, category, header (text, image, video,
  document), body with examples, footer, buttons; in code or in a YAML/JSON file (:func:`load`).
* :class:`Templates` (``bot.templates``) — :meth:`~Templates.push` (idempotent: an unchanged
  template is not resubmitted), :meth:`~Templates.status` (polls both APIs), the webhooks of
  Meta's template status and category changes, :meth:`~Templates.get` for sending.
* Sending: ``definition.message(...)`` is a :class:`~eki_whatsapp.messages.Template` by name;
  Meta sends it by name and language, Twilio by the ContentSid found in the store — so the same
  send works in dual mode and on failover without the caller knowing either id.

The CLI: ``eki-whatsapp templates push FILE | list | status``. See docs/templates.md.
"""

from __future__ import annotations

from .definition import (
    Button,
    CopyCodeButton,
    HeaderMedia,
    HeaderText,
    PhoneButton,
    QuickReply,
    RemoteTemplate,
    TemplateDefinition,
    UrlButton,
    load,
)
from .manager import PushResult, Templates
from .registry import ProviderState, TemplateChange, TemplateRecord

__all__ = [
    "Button",
    "CopyCodeButton",
    "HeaderMedia",
    "HeaderText",
    "PhoneButton",
    "ProviderState",
    "PushResult",
    "QuickReply",
    "RemoteTemplate",
    "TemplateChange",
    "TemplateDefinition",
    "TemplateRecord",
    "Templates",
    "UrlButton",
    "load",
]
