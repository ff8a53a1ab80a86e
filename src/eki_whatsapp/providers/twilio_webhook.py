"""Moved: Twilio's webhook parser is :mod:`eki_whatsapp.providers.twilio.parse` (kept for old imports)."""

from ..addresses import split as split_address
from .twilio.parse import PayloadError, is_twilio, parse_params

__all__ = ["PayloadError", "is_twilio", "parse_params", "split_address"]
