"""Webhook signatures, kept here for old imports: each provider's checks live in its package.

* Meta: :mod:`eki_whatsapp.providers.meta.webhook` (``X-Hub-Signature-256``, ``hub.verify_token``);
* Twilio: :mod:`eki_whatsapp.providers.twilio.webhook` (``X-Twilio-Signature``, ``bodySHA256``).

Every comparison is constant-time; no secret is ever logged.
"""

from __future__ import annotations

from .providers.meta.webhook import meta_signature, verify_meta_signature, verify_token
from .providers.twilio.webhook import (
    body_sha256,
    twilio_signature,
    url_variants,
    verify_twilio_signature,
)

__all__ = [
    "body_sha256",
    "meta_signature",
    "twilio_signature",
    "url_variants",
    "verify_meta_signature",
    "verify_token",
    "verify_twilio_signature",
]
