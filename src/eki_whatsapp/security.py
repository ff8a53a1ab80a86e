"""Webhook authentication: Meta's verify-token handshake and ``X-Hub-Signature-256``, Twilio's
``X-Twilio-Signature``. Every comparison is constant-time; no secret is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit


def meta_signature(app_secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_meta_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Check ``X-Hub-Signature-256`` over the exact bytes received."""
    if not header:
        return False
    given = header.strip()
    if given[:7].lower() != "sha256=":
        return False
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")
    return hmac.compare_digest(expected, given[7:].lower().encode("utf-8", "replace"))


def verify_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of Meta's ``hub.verify_token``."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The ``X-Twilio-Signature`` Twilio computes for a request to ``url`` with form ``params``.

    Params are sorted by name (then value) and appended as ``name + value``; for GET requests and
    JSON bodies pass no params.
    """
    data = url
    for name, value in sorted(set(params)):
        data += name + value
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None or parts.hostname is None:
        return url
    port = 443 if parts.scheme == "https" else 80
    netloc = parts.netloc + f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None or parts.hostname is None:
        return url
    default = 443 if parts.scheme == "https" else 80
    if parts.port != default:
        return url
    netloc = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def url_variants(url: str) -> list[str]:
    """The URL as given, with the default port and without it (Twilio may sign either)."""
    url = url.split("#", 1)[0]
    out = [url]
    for variant in (_with_port(url), _without_port(url)):
        if variant not in out:
            out.append(variant)
    return out


def verify_twilio_signature(
    auth_tokens: Sequence[str],
    url: str,
    params: Iterable[tuple[str, str]],
    header: str | None,
) -> bool:
    """Check ``X-Twilio-Signature`` against every token (rotation) and URL port variant."""
    if not header:
        return False
    given = header.strip().encode("utf-8", "replace")
    params = list(params)
    ok = False
    for token in auth_tokens:
        for candidate in url_variants(url):
            expected = twilio_signature(token, candidate, params).encode("ascii")
            # keep comparing after a match so timing does not depend on which variant matched
            ok |= hmac.compare_digest(expected, given)
    return ok


def body_sha256(body: bytes) -> str:
    """Hex SHA-256 of a body, as Twilio puts in ``bodySHA256`` for JSON requests."""
    return hashlib.sha256(body).hexdigest()
