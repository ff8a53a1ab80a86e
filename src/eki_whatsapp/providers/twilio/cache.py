"""Where the ``ContentSid`` of on-demand session content is remembered.

Content created through the Content API is reusable: equal content (same :func:`content_key`)
is sent with the same ``HX…`` SID. The SIDs live in the Store (namespace ``twilio.content``), so
every web process and worker shares them and a restart does not create the content again; a
process without a store keeps them in memory. Two processes that create the same content at the
same moment both succeed and one SID wins: harmless, the other content is simply unused.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...store.base import Store

__all__ = ["NAMESPACE", "ContentCache"]

logger = logging.getLogger("eki_whatsapp.providers.twilio")

#: Store namespace of the cache (key: content hash, value: ``{"sid": "HX…"}``).
NAMESPACE = "twilio.content"


class ContentCache:
    """``content hash → ContentSid``, in the Store when one is attached, else in memory."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        """The SID of content with this hash, when it was created before."""
        with self._lock:
            sid = self._memory.get(key)
        if sid is not None or self.store is None:
            return sid
        try:
            value = self.store.get_value(NAMESPACE, key)
        except Exception:  # a store hiccup costs one Content API call, not the message
            logger.warning("could not read the Twilio content cache; creating the content again")
            return None
        sid = value.get("sid") if isinstance(value, dict) else None
        if isinstance(sid, str) and sid:
            with self._lock:
                self._memory[key] = sid
            return sid
        return None

    def put(self, key: str, sid: str) -> None:
        """Remember ``sid`` for content with this hash."""
        with self._lock:
            self._memory[key] = sid
        if self.store is not None:
            try:
                self.store.set_value(NAMESPACE, key, {"sid": sid})
            except Exception:
                logger.warning("could not write the Twilio content cache; other processes will create it")
