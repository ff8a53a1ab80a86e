"""The framework boundary: :class:`WebhookRequest` in, :class:`WebhookResponse` out.

Adapters (Django, Flask, your own) build a ``WebhookRequest`` from their request object — keeping
the body as the **raw bytes received**, since signatures are computed over them — hand it to
``Bot.handle()`` and turn the ``WebhookResponse`` back into their response type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _norm_headers(headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if headers is None:
        return out
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        key = str(name).lower()
        # Adapters hand over text values (every request goes through here): no conversion then.
        text = value if type(value) is str else _header_text(value)
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def _header_text(value: Any) -> str:
    """A header value as text; a multi-valued header (a list) as its values joined by commas."""
    return ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _norm_query(query: Mapping[str, Any] | str | None, url: str) -> dict[str, list[str]]:
    if query is None or query == "":
        query = urlsplit(url).query
    if isinstance(query, str):
        return parse_qs(query, keep_blank_values=True)
    out: dict[str, list[str]] = {}
    for name, value in query.items():
        if isinstance(value, (list, tuple)):
            out[str(name)] = [str(v) for v in value]
        else:
            out[str(name)] = [str(value)]
    return out


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request as the bot needs it.

    Args:
        method: ``"GET"`` or ``"POST"`` (any case).
        url: the full URL as received, query string included (used for Twilio signatures
            unless ``WHATSAPP_WEBHOOK_URL`` says what the public URL is).
        headers: header names in any case; multi-valued headers as lists.
        query: the query parameters (a mapping, or the raw query string); taken from ``url``
            when empty.
        body: the raw body bytes, exactly as received.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    #: The media type without parameters, lower case (``application/json``; ``""`` when none):
    #: read once here, since every provider's ``detect`` asks for it.
    content_type: str = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        query: Mapping[str, Any] | str | None = None,
        body: bytes | bytearray | memoryview | str = b"",
    ) -> None:
        object.__setattr__(self, "method", method.upper())
        object.__setattr__(self, "url", url)
        normalised = _norm_headers(headers)
        ctype = normalised.get("content-type")
        object.__setattr__(self, "headers", normalised)
        object.__setattr__(self, "content_type", ctype.split(";", 1)[0].strip().lower() if ctype else "")
        object.__setattr__(self, "query", _norm_query(query, url))
        if isinstance(body, str):
            body = body.encode("utf-8")
        object.__setattr__(self, "body", bytes(body))

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())

    def query_param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    def __repr__(self) -> str:
        return f"WebhookRequest({self.method} {self.url!r}, {len(self.body)} bytes)"


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What to answer: status, headers and body bytes."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def text(cls, status: int, text: str) -> WebhookResponse:
        return cls(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode("utf-8"))

    @classmethod
    def twiml(cls) -> WebhookResponse:
        """An empty TwiML ``<Response/>``: Twilio sends nothing back to the user."""
        return cls(200, {"Content-Type": "text/xml; charset=utf-8"}, TWIML_EMPTY)

    @property
    def content_type(self) -> str | None:
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value
        return None

    def __repr__(self) -> str:
        return f"WebhookResponse({self.status}, {self.body[:60]!r})"
