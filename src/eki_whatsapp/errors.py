"""Library-level exceptions that are not about a provider's answer (those live in
:mod:`eki_whatsapp.providers.base`)."""

from __future__ import annotations


class EkiWhatsAppError(Exception):
    """Base class of every exception raised by eki_whatsapp."""


class ConfigError(EkiWhatsAppError, ValueError):
    """A setting is missing or contradictory. The message names the variable and the fix."""


class StoreError(EkiWhatsAppError):
    """The store could not read or write."""
