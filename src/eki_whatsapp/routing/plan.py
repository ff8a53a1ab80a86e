"""One routing implementation, a sync and an async face.

Routing a message is written once as a *plan*: a generator that yields an :class:`Attempt` (send
this message through that provider), receives the :class:`~eki_whatsapp.providers.base.SendReceipt`
or the :class:`~eki_whatsapp.providers.base.ProviderError`, and returns the final receipt (or
raises). :func:`run_sync` and :func:`run_async` drive a plan with the providers' ``send`` and
``send_async`` — the same shape as the providers' HTTP plans (``providers/_http.py``).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, Union

from ..events import InboundMessage
from ..messages import Message
from ..providers.base import Provider, ProviderError, SendReceipt

if TYPE_CHECKING:
    from .policy import Decision

__all__ = [
    "Attempt",
    "DecisionOptions",
    "Outcome",
    "Pending",
    "RoutePlan",
    "SendOptions",
    "run_async",
    "run_sync",
]


class DecisionOptions(TypedDict, total=False):
    """What a routing decision may be given besides the recipient and the message (keyword-only:
    :meth:`Router.choose`, :meth:`Router.decide`, and every send).

    Attributes:
        inbound: the message this answers (a reply goes out on the channel it came in on).
        category: the pricing category (default: from the message: a template's, else service).
        provider: send through this provider only (no policy choice, no failover).
    """

    inbound: InboundMessage | None
    category: str | None
    provider: str | None


class SendOptions(DecisionOptions, total=False):
    """The options of a send (:meth:`Router.send`, :meth:`Bot.send <eki_whatsapp.Bot.send>`,
    ``ctx.reply``): those of :class:`DecisionOptions`, and

    Attributes:
        exempt: send even to a user who opted out (otherwise :class:`OptedOut` is raised before
            any request).
        extra: added to the message's log rows (the console logs ``{"staff": name}``).
        idempotency_key: a send already accepted under this key is not made again: its stored
            receipt is returned (``ctx.reply`` passes one per send of a handling, so a handler run
            again after a crash does not answer twice).
        queue: when no provider can take the message now (down, circuit open, rate-limited),
            keep it in the outbox and return a ``queued`` receipt (default ``True``); ``False``
            raises the provider's error instead (docs/deployment.md, "The outbox").
    """

    exempt: bool
    extra: Mapping[str, Any] | None
    idempotency_key: str | None
    queue: bool


@dataclass(slots=True)
class Pending:
    """One outbound message while it is being routed."""

    to: str
    user: str
    message: Message
    category: str | None
    inbound: InboundMessage | None
    explicit: str | None
    at: datetime
    tried: list[tuple[str, bool]] = field(default_factory=list)  # (provider, fallback)
    #: Added to the log rows of this message (e.g. ``{"staff": "lucia"}`` for a console reply).
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: provider -> the user's latest inbound message time on its number (read once per message).
    seen: dict[str, datetime | None] = field(default_factory=dict)
    #: Keep the message in the outbox rather than raise when no provider can take it now.
    queue: bool = False
    #: The outbox send this is a delivery of (its row is rewritten, not added to).
    outbox: str | None = None
    #: The decision of the latest attempt (what the outbox records of a send that waits).
    decision: Decision | None = None
    #: The send's idempotency key: its receipt is stored with the log row, in one write.
    key: str | None = None


@dataclass(slots=True)
class Attempt:
    """Step: send ``message`` to ``to`` through ``provider``; the plan receives the outcome."""

    provider: str
    to: str
    message: Message
    #: The key the provider sends with the request, echoed by its statuses (``None``: none).
    correlation: str | None = None


Outcome = Union[SendReceipt, ProviderError]
RoutePlan = Generator[Attempt, Outcome, SendReceipt]


def run_sync(plan: RoutePlan, providers: Mapping[str, Provider]) -> SendReceipt:
    """Run ``plan`` with the providers' blocking ``send``."""
    try:
        step = next(plan)
        while True:
            outcome: Outcome
            try:
                if step.correlation is None:
                    outcome = providers[step.provider].send(step.to, step.message)
                else:
                    outcome = providers[step.provider].send(  # type: ignore[call-arg]
                        step.to, step.message, correlation=step.correlation
                    )
            except ProviderError as exc:
                outcome = exc
            step = plan.send(outcome)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(plan: RoutePlan, providers: Mapping[str, Provider]) -> SendReceipt:
    """Run ``plan`` with the providers' ``send_async``."""
    try:
        step = next(plan)
        while True:
            outcome: Outcome
            try:
                if step.correlation is None:
                    outcome = await providers[step.provider].send_async(step.to, step.message)
                else:
                    outcome = await providers[step.provider].send_async(  # type: ignore[call-arg]
                        step.to, step.message, correlation=step.correlation
                    )
            except ProviderError as exc:
                outcome = exc
            step = plan.send(outcome)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
