"""Push, track and send managed templates on every configured provider.

``bot.templates`` is a :class:`Templates` over the bot's store and providers::

    from eki_whatsapp.templates import load

    results = bot.templates.push(load("templates.yaml"))   # idempotent
    for record in bot.templates.status():                  # polls both APIs
        print(record.name, {p: s.status for p, s in record.providers.items()})
    bot.send("+5511987654321", bot.templates.get("order_shipped").message("Ana", "8127"))

Meta's ``message_template_status_update`` / ``template_category_update`` webhooks update the
records as they arrive (the bot passes template webhooks to :meth:`Templates.on_change`).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ..providers.base import ProviderError
from .definition import RemoteTemplate, TemplateDefinition
from .registry import (
    ProviderState,
    TemplateChange,
    TemplateRecord,
    find_by_remote_id,
    load_record,
    now_text,
    record_keys,
    save_record,
)

if TYPE_CHECKING:
    from ..events import ChangeEvent
    from ..store.base import Store

__all__ = ["PushResult", "Templates"]

logger = logging.getLogger("eki_whatsapp.templates")

Action = Literal["created", "updated", "unchanged", "failed"]


@dataclass(frozen=True, slots=True)
class PushResult:
    """What :meth:`Templates.push` did with one template on one provider.

    ``action`` is ``created``, ``updated`` (changed definition resubmitted), ``unchanged``
    (nothing sent: the provider already has this exact definition) or ``failed`` (``error``
    says why).
    """

    name: str
    language: str
    provider: str
    action: Action
    state: ProviderState | None = None
    error: str | None = None


class Templates:
    """Managed templates over a store and the providers that can hold templates."""

    def __init__(self, store: Store, providers: Mapping[str, Any]) -> None:
        self.store = store
        self.providers = {name: p for name, p in providers.items() if hasattr(p, "create_template")}

    # --- push ------------------------------------------------------------------------------------
    def push(self, definitions: Iterable[TemplateDefinition]) -> builtins.list[PushResult]:
        """Submit each definition to each provider where it is new or changed; idempotent."""
        if not self.providers:
            raise ConfigError(
                "no provider can hold templates: configure META_* (with META_BUSINESS_ACCOUNT_ID) "
                "or TWILIO_* credentials"
            )
        results: builtins.list[PushResult] = []
        for definition in definitions:
            fingerprint = definition.fingerprint()
            record = load_record(self.store, definition.name, definition.language) or TemplateRecord(
                definition.name, definition.language, definition.category, definition.to_json(), fingerprint
            )
            for name, provider in self.providers.items():
                state = record.state(name)
                if state is not None and state.id and state.fingerprint == fingerprint:
                    results.append(PushResult(definition.name, definition.language, name, "unchanged", state))
                    continue
                try:
                    remote, action = self._submit(provider, definition, state)
                except (ProviderError, ConfigError) as exc:
                    logger.warning("template %s not pushed to %s: %s", definition.key, name, exc)
                    results.append(
                        PushResult(definition.name, definition.language, name, "failed", state, str(exc))
                    )
                    continue
                new_state = ProviderState(
                    remote.id, remote.status, remote.category, remote.reason, fingerprint, now_text()
                )
                record = record.with_state(name, new_state)
                results.append(PushResult(definition.name, definition.language, name, action, new_state))
            record = replace(
                record, category=definition.category, definition=definition.to_json(), fingerprint=fingerprint
            )
            save_record(self.store, record)
        return results

    def _submit(
        self, provider: Any, definition: TemplateDefinition, state: ProviderState | None
    ) -> tuple[RemoteTemplate, Action]:
        if state is not None and state.id:
            return provider.update_template(state.id, definition), "updated"
        try:
            return provider.create_template(definition), "created"
        except ProviderError:
            # Made by hand before (Meta refuses a second template of that name): adopt and edit it.
            existing = provider.fetch_template(definition, None)
            if existing is None:
                raise
            return provider.update_template(existing.id, definition), "updated"

    # --- read ------------------------------------------------------------------------------------
    def list(self) -> list[TemplateRecord]:
        """Every managed template as last known (no request)."""
        out = []
        for key in record_keys(self.store):
            name, _, language = key.rpartition(":")
            record = load_record(self.store, name, language)
            if record is not None:
                out.append(record)
        return out

    def get(self, name: str, language: str | None = None) -> TemplateDefinition:
        """The pushed definition called ``name`` (in ``language``, or the only one)."""
        matches = [r for r in self.list() if r.name == name and (language is None or r.language == language)]
        if not matches:
            raise ConfigError(
                f"template {name!r} is not managed here: push it first (eki-whatsapp templates push)"
            )
        if len(matches) > 1:
            raise ConfigError(f"template {name!r} exists in several languages: pass language=")
        return TemplateDefinition.from_json(matches[0].definition)

    def status(self, *, refresh: bool = True) -> builtins.list[TemplateRecord]:
        """Every managed template; with ``refresh`` each provider is asked for its status now."""
        records = self.list()
        if not refresh:
            return records
        out = []
        for record in records:
            definition = TemplateDefinition.from_json(record.definition)
            for name, provider in self.providers.items():
                state = record.state(name)
                if state is None or not state.id:
                    continue
                try:
                    remote = provider.fetch_template(definition, state.id)
                except (ProviderError, ConfigError) as exc:
                    logger.warning("status of template %s on %s unknown: %s", record.key, name, exc)
                    continue
                if remote is not None:
                    state = replace(
                        state,
                        status=remote.status,
                        category=remote.category or state.category,
                        reason=remote.reason,
                        updated_at=now_text(),
                    )
                    record = record.with_state(name, state)
            save_record(self.store, record)
            out.append(record)
        return out

    # --- webhooks --------------------------------------------------------------------------------
    def on_change(self, event: ChangeEvent) -> TemplateRecord | None:
        """Apply a template webhook (status or category change); the updated record, or ``None``
        when the event is not about a managed template."""
        from ..providers import template_change

        change = template_change(event)
        if change is None:
            return None
        return self.apply(change)

    def apply(self, change: TemplateChange) -> TemplateRecord | None:
        """Apply a provider's news about a template to its record."""
        record = None
        if change.name and change.language:
            record = load_record(self.store, change.name, change.language)
        if record is None and change.id:
            record = find_by_remote_id(self.store, change.provider, change.id)
        if record is None:
            return None
        state = record.state(change.provider) or ProviderState(id=change.id)
        if change.id and state.id and change.id != state.id:
            return None  # news about a superseded submission
        state = replace(
            state,
            id=state.id or change.id,
            status=change.status or state.status,
            reason=change.reason if change.status else state.reason,
            category=change.category or state.category,
            updated_at=now_text(),
        )
        record = record.with_state(change.provider, state)
        save_record(self.store, record)
        logger.info(
            "template %s on %s is %s%s",
            record.key,
            change.provider,
            state.status,
            f" ({state.reason})" if state.reason else "",
        )
        return record
