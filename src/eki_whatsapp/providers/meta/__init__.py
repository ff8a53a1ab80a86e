"""Meta's WhatsApp Cloud API, end to end: everything that knows Meta's wire format.

* :mod:`.webhook` — recognise Meta's requests, the ``hub.*`` handshake, ``X-Hub-Signature-256``
  (:class:`MetaWebhook`);
* :mod:`.parse` — notification bodies → events;
* :mod:`.send` — :class:`MetaCloud`, rendering and sending through the Graph API;
* :mod:`.media` — downloading inbound media, uploading media to send;
* :mod:`.templates` — the ``message_templates`` API and the template webhooks;
* :mod:`.errors` — Meta's error codes → the typed errors;
* :mod:`.doctor` — the checks of ``eki-whatsapp doctor``.

The wire facts all of it relies on are in docs/wire.md §1-6. ``MetaCloud`` is imported on first
use so that reading webhooks does not import httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .webhook import MetaWebhook

if TYPE_CHECKING:
    from .send import MetaCloud, render

__all__ = ["MetaCloud", "MetaWebhook", "render"]

NAME = "meta"


def __getattr__(name: str) -> Any:
    if name in ("MetaCloud", "render"):
        from . import send

        return getattr(send, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
