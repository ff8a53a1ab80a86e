"""One way to read a WhatsApp address, wherever it comes from.

Users are written many ways: ``+5511987654321``, ``5511987654321``, ``whatsapp:+5511987654321``
(Twilio), ``+55 11 98765-4321`` (people), or a business-scoped user id (BSUID,
``US.13491208655302741918``) for users known only by username. Inside the library a user is
always the **normalised** form: E.164 digits without ``+``, or the BSUID as given.

Example::

    >>> normalize("whatsapp:+55 11 98765-4321")
    '5511987654321'
    >>> split("whatsapp:US.13491208655302741918")
    (None, 'US.13491208655302741918')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BSUID", "Address", "normalize", "parse", "split", "strip_channel"]

#: Business-scoped user id (2026): ``US.13491208655302741918``, ``US.ENT.1234``.
BSUID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9.]{1,160}$")
#: E.164 without ``+``: a country code (never 0) and at most 15 digits.
_PHONE = re.compile(r"^[1-9]\d{5,14}$")
#: Separators people type inside phone numbers.
_SEPARATORS = re.compile(r"[\s\-().]")
_CHANNEL = "whatsapp:"


@dataclass(frozen=True, slots=True)
class Address:
    """A valid address: phone digits without ``+``, or a BSUID (``is_bsuid``)."""

    value: str
    is_bsuid: bool


def strip_channel(text: str) -> str:
    """``text`` without Twilio's ``whatsapp:`` channel prefix (any case) and outer spaces."""
    text = text.strip()
    if text[: len(_CHANNEL)].lower() == _CHANNEL:
        text = text[len(_CHANNEL) :].strip()
    return text


def parse(text: str) -> Address | None:
    """The address ``text`` denotes, or ``None`` when it is neither a phone number nor a BSUID."""
    text = strip_channel(text)
    if BSUID.match(text):
        return Address(text, True)
    digits = _SEPARATORS.sub("", text).removeprefix("+")
    if _PHONE.match(digits):
        return Address(digits, False)
    return None


def normalize(text: str) -> str:
    """The user as stored: phone digits without ``whatsapp:``/``+``/separators, else the text
    as given without the channel prefix (a BSUID, or something unknown kept as it came)."""
    if text.isdigit():  # as providers send it: the common case first
        return text
    text = strip_channel(text)
    plain = text.removeprefix("+")
    if plain.isdigit():
        return plain
    digits = _SEPARATORS.sub("", plain)
    return digits if digits.isdigit() else text


def split(value: str | None) -> tuple[str | None, str | None]:
    """``(phone digits, None)`` for a phone number, ``(None, user id)`` otherwise.

    ``whatsapp:+5511...`` → ``("5511...", None)``; ``whatsapp:US.123`` → ``(None, "US.123")``.
    """
    if not value:
        return None, None
    text = strip_channel(value)
    plain = text.removeprefix("+")
    if plain.isdigit():
        return plain, None
    return None, text or None
