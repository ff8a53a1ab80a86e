"""Moved: Meta's webhook parser is :mod:`eki_whatsapp.providers.meta.parse` (kept for old imports)."""

from .meta.parse import OBJECT, PayloadError, parse_body

__all__ = ["OBJECT", "PayloadError", "parse_body"]
