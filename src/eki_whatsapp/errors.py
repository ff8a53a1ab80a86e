"""Library-level exceptions that are not about a provider's answer (those live in
:mod:`eki_whatsapp.providers.base`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .i18n import N_


class EkiWhatsAppError(Exception):
    """Base class of every exception raised by eki_whatsapp."""


class ConfigError(EkiWhatsAppError, ValueError):
    """A setting is missing or contradictory. The message names the variable and the fix."""


class StoreError(EkiWhatsAppError):
    """The store could not read or write."""


class UnstorableValue(StoreError, ValueError):
    """The store cannot hold a value of this write (a lone surrogate or NUL in text, a number out
    of its range): nothing was written. Unlike another :class:`StoreError`, trying again later
    cannot help; the webhook stores the event cleaned by
    :func:`eki_whatsapp.store.rules.storable` instead (docs/webhook.md, "Malformed and extreme
    input")."""


def _same(message: str) -> str:
    return message


@dataclass(frozen=True, slots=True)
class SettingProblem:
    """One invalid setting: the variable, what it holds, what is wrong and what is allowed.

    ``problem`` is an English sentence template with ``{...}`` fields filled from ``params``;
    :meth:`render` takes a ``gettext`` function so the command line can show it translated.
    """

    variable: str
    value: str
    problem: str
    params: tuple[tuple[str, str], ...] = ()
    allowed: tuple[str, ...] = ()
    suggestion: str | None = None

    def render(self, gettext: Callable[[str], str] = _same) -> str:
        """``WHATSAPP_PROVIDER is 'dul': not an allowed value (allowed: dual, meta, twilio). Did you
        mean 'dual'?``"""
        params = dict(self.params)
        text = gettext("{variable} is {value}: {problem}").format(
            variable=self.variable, value=self.value, problem=gettext(self.problem).format(**params)
        )
        if self.allowed:
            text += gettext(" (allowed: {allowed})").format(allowed=", ".join(self.allowed))
        if self.suggestion is not None:
            return text + ". " + gettext("Did you mean {suggestion!r}?").format(suggestion=self.suggestion)
        return text + "."


class SettingsError(ConfigError):
    """:class:`~eki_whatsapp.Settings` could not be built from the values given.

    Every entry point (``Settings()``, ``Bot()``, the command line, the Django and Flask adapters)
    raises this instead of pydantic's ``ValidationError``; ``problems`` lists each invalid variable.
    """

    def __init__(
        self,
        problems: Sequence[SettingProblem],
        hint: str = N_("Fix it in the environment or in .env (see docs/configuration.md)."),
    ) -> None:
        self.problems = tuple(problems)
        self.hint = hint
        super().__init__(self.render())

    def render(self, gettext: Callable[[str], str] = _same) -> str:
        """The whole message, optionally translated with ``gettext``."""
        return " ".join([*(problem.render(gettext) for problem in self.problems), gettext(self.hint)])
