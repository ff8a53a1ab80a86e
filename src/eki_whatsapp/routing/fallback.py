"""The fallback template: what goes instead of a free-form message when the window is closed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Union, cast

from ..messages import Message, Template
from ..providers.base import WindowClosed
from .kinds import message_kind
from .policy import Choice, Decision

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["Fallback", "FallbackTemplate"]

#: What to send when the window is closed: a template, or ``(user, original message) -> template``.
FallbackTemplate = Union[Template, Callable[[str, Union[Message, str, None]], Union[Template, None]]]


class Fallback:
    """The configured fallback template (``WHATSAPP_FALLBACK_TEMPLATE*``, or one given to the
    router) and the decisions that send it.

    Args:
        template: a template, a function ``(user, original message) -> template``, or ``None``.
        category: the pricing category of the template (``WHATSAPP_FALLBACK_TEMPLATE_CATEGORY``).
    """

    def __init__(self, template: FallbackTemplate | None, category: str | None) -> None:
        self.template = template
        self.category = category

    @classmethod
    def from_settings(cls, settings: Settings, template: FallbackTemplate | None = None) -> Fallback:
        """``template``, else the one the settings name (none when ``WHATSAPP_FALLBACK_TEMPLATE``
        is not set)."""
        if template is None and settings.whatsapp_fallback_template:
            template = Template(
                settings.whatsapp_fallback_template,
                settings.whatsapp_fallback_template_language,
                content_sid=settings.whatsapp_fallback_template_content_sid,
            )
        return cls(template, settings.whatsapp_fallback_template_category)

    @property
    def configured(self) -> bool:
        """Whether a fallback template (or a function making one) is configured."""
        return self.template is not None

    def template_for(self, user: str, message: Message | str | None) -> Template | None:
        """The template to send to ``user`` instead of ``message`` (``None``: none configured)."""
        template = self.template
        if template is None or isinstance(template, Template):
            return template
        if hasattr(template, "kind"):  # a template-like model of one's own
            return cast(Template, template)
        return template(user, message)

    def apply(self, choice: Choice, user: str, message: Message, category: str | None) -> Decision:
        """The policy's choice with what to send: the message, or the fallback template replacing
        it when the choice says so (:class:`WindowClosed` when none is configured)."""
        if not choice.fallback:
            return Decision(
                choice.provider,
                choice.reason,
                message,
                category,
                choice.in_window,
                free_allowance=choice.free_allowance,
            )
        template = self.template_for(user, message)
        if template is None:
            raise WindowClosed(
                f"the 24-hour window of {user} on {choice.provider} is closed and no fallback "
                "template is configured: send a Template, or set WHATSAPP_FALLBACK_TEMPLATE "
                "(and WHATSAPP_FALLBACK_TEMPLATE_CONTENT_SID for Twilio)",
                provider=choice.provider,
            )
        extra = {"choice": choice.basis, "original_kind": message_kind(message)}
        decision = self.decision(choice.provider, choice.reason, template, choice.in_window, extra)
        return replace(decision, free_allowance=choice.free_allowance) if choice.free_allowance else decision

    def decision(
        self, provider: str, reason: str, template: Template, in_window: bool, extra: Mapping[str, Any]
    ) -> Decision:
        """Send ``template`` through ``provider`` in place of a free-form message."""
        return Decision(
            provider,
            reason,
            template,
            self.category,
            in_window,
            fallback=True,
            extra={"fallback_template": True, **extra},
        )
