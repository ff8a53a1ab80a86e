"""What the Store remembers of each managed template: its fingerprint and, per provider, the
remote id (Meta template id, Twilio ``HX…`` ContentSid), approval status, category and reason.

One record per ``name:language`` in the Store namespace ``templates`` (shared by every process),
plus an index of the keys. Providers read it to send a template by name: Twilio finds the
ContentSid of an approved template here, so callers never handle either id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..providers.twilio.templates import content_sid_for
    from ..store.base import Store

__all__ = [
    "NAMESPACE",
    "ProviderState",
    "TemplateChange",
    "TemplateRecord",
    "approved_id",
    "content_sid_for",
    "load_record",
    "ready_on",
    "record_keys",
    "save_record",
]

logger = logging.getLogger("eki_whatsapp.templates")

#: Store namespace of the template records.
NAMESPACE = "templates"
_INDEX = "_index"
#: Statuses in which a template can be sent.
APPROVED = "approved"


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateChange:
    """A provider's news about a template (from a webhook): any field may be missing."""

    provider: str
    name: str | None = None
    language: str | None = None
    id: str | None = None
    status: str | None = None
    reason: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderState:
    """A template as one provider knows it.

    Attributes:
        id: Meta's template id, or Twilio's ContentSid (``HX…``).
        status: lower case: ``pending``, ``approved``, ``rejected``, ``paused``, ``disabled``, ...
        category: the category the provider gave it (``UTILITY``, ``MARKETING``, ...).
        reason: why it was rejected/paused, when the provider says.
        fingerprint: the definition's fingerprint when it was submitted to this provider.
    """

    id: str | None = None
    status: str = "pending"
    category: str | None = None
    reason: str | None = None
    fingerprint: str | None = None
    updated_at: str | None = None

    @property
    def approved(self) -> bool:
        """Whether it can be sent."""
        return self.status == APPROVED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "category": self.category,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProviderState:
        return cls(
            id=_opt(data.get("id")),
            status=str(data.get("status") or "pending"),
            category=_opt(data.get("category")),
            reason=_opt(data.get("reason")),
            fingerprint=_opt(data.get("fingerprint")),
            updated_at=_opt(data.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """One managed template: its definition (as JSON) and its state on each provider."""

    name: str
    language: str
    category: str
    definition: Mapping[str, Any] = field(repr=False)
    fingerprint: str
    providers: Mapping[str, ProviderState] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return record_key(self.name, self.language)

    def state(self, provider: str) -> ProviderState | None:
        """Its state on ``provider`` (``None``: never submitted there)."""
        return self.providers.get(provider)

    def with_state(self, provider: str, state: ProviderState) -> TemplateRecord:
        providers = dict(self.providers)
        providers[provider] = state
        return TemplateRecord(
            self.name, self.language, self.category, self.definition, self.fingerprint, providers
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "definition": dict(self.definition),
            "fingerprint": self.fingerprint,
            "providers": {name: state.to_json() for name, state in self.providers.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemplateRecord:
        providers = data.get("providers") or {}
        return cls(
            name=str(data["name"]),
            language=str(data["language"]),
            category=str(data.get("category") or ""),
            definition=dict(data.get("definition") or {}),
            fingerprint=str(data.get("fingerprint") or ""),
            providers={
                str(k): ProviderState.from_json(v) for k, v in providers.items() if isinstance(v, dict)
            },
        )


def record_key(name: str, language: str) -> str:
    """The Store key of a template: ``name:language``."""
    return f"{name}:{language}"


def now_text() -> str:
    """Now, as stored in records (ISO 8601, UTC)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_keys(store: Store) -> list[str]:
    """Keys of every managed template, in the order they were first pushed."""
    value = store.get_value(NAMESPACE, _INDEX)
    return [str(k) for k in value] if isinstance(value, list) else []


def load_record(store: Store, name: str, language: str) -> TemplateRecord | None:
    """The record of ``name``/``language`` (``None``: not managed)."""
    value = store.get_value(NAMESPACE, record_key(name, language))
    if not isinstance(value, dict):
        return None
    try:
        return TemplateRecord.from_json(value)
    except (KeyError, TypeError, ValueError):
        logger.warning("template record %s:%s is unreadable; push it again", name, language)
        return None


def find_by_remote_id(store: Store, provider: str, remote_id: str) -> TemplateRecord | None:
    """The record whose ``provider`` id is ``remote_id``."""
    for key in record_keys(store):
        name, _, language = key.rpartition(":")
        record = load_record(store, name, language)
        if record is not None:
            state = record.state(provider)
            if state is not None and state.id == remote_id:
                return record
    return None


def save_record(store: Store, record: TemplateRecord) -> None:
    """Store ``record`` (and index its key)."""
    store.set_value(NAMESPACE, record.key, record.to_json())
    keys = record_keys(store)
    if record.key not in keys:
        store.set_value(NAMESPACE, _INDEX, [*keys, record.key])


def ready_on(store: Store | None, provider: str, name: str, language: str) -> bool | None:
    """Whether a managed template can be sent on ``provider`` (``None``: not managed here)."""
    if store is None:
        return None
    try:
        record = load_record(store, name, language)
    except Exception:  # the store is down: let the provider answer instead
        return None
    if record is None:
        return None
    state = record.state(provider)
    return state is not None and state.approved


def approved_id(store: Store, provider: str, name: str, language: str) -> str | None:
    """The remote id of a managed template approved on ``provider`` (Twilio's ContentSid, say;
    ``None``: not managed here, not approved, or the store is down)."""
    try:
        record = load_record(store, name, language)
    except Exception:
        return None
    state = record.state(provider) if record is not None else None
    if state is None or not state.approved:
        return None
    return state.id


def __getattr__(name: str) -> Any:
    if name == "content_sid_for":  # its home is the Twilio package now
        from ..providers.twilio.templates import content_sid_for

        return content_sid_for
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
