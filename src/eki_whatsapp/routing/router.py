"""The :class:`Router`: gathers the facts, asks the policy, sends, fails over, logs and prices.

Every outbound message — ``ctx.reply()`` and ``bot.send()`` alike — goes through
:meth:`Router.send` (or :meth:`Router.send_async`). The decision itself is the pure
:func:`~eki_whatsapp.routing.policy.choose`; the router reads what it needs (windows from the
Store, breaker states, quotes from the ledger), turns the choice into a :class:`Decision` (with
the fallback template when a free-form message meets a closed window), and runs one plan
(:mod:`~eki_whatsapp.routing.plan`) with a sync or an async face.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .. import addresses
from ..costs import Costs
from ..errors import ConfigError
from ..events import InboundMessage, StatusUpdate
from ..messages import Message, Template
from ..optout import OptOuts
from ..providers.base import (
    InvalidRecipient,
    OutcomeUnknown,
    Provider,
    ProviderDown,
    ProviderError,
    SendReceipt,
    Undeliverable,
    UnsupportedMessage,
    WindowClosed,
)
from ..store.base import Store
from .breaker import Breakers
from .facts import Facts
from .fallback import Fallback, FallbackTemplate
from .kinds import coerce_message, is_template, message_category
from .log import OutboundLog, user_key
from .outbox import Outbox, new_correlation
from .plan import Attempt, DecisionOptions, Pending, RoutePlan, SendOptions, run_async, run_sync
from .policy import Decision, after_failure, choose
from .receipts import Receipts
from .records import SendRecords
from .recovery import Recovery

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..bot import Bot
    from ..settings import Settings

logger = logging.getLogger("eki_whatsapp.routing")

__all__ = ["Router", "SendOptions"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Router:
    """Chooses the provider for each outbound message, sends, fails over, logs and prices.

    Args:
        providers: the registered providers by name (``{"meta": ..., "twilio": ...}``).
        store: the Store (windows, log, ledger, counters).
        settings: policy and routing settings (``WHATSAPP_PROVIDER``, ``WHATSAPP_WEIGHTS``, ...).
        costs: the cost ledger (default: from the settings, on ``store``).
        clock: returns "now" as an aware UTC datetime (inject one in tests and simulations).
        rng: random source for weighted load balancing.
        fallback_template: what to send when the window is closed: a template, or a function
            ``(user, original message) -> template``. Default: ``WHATSAPP_FALLBACK_TEMPLATE``.
        optouts: the opt-out list checked before every send (default: one on ``store``).
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        store: Store,
        settings: Settings,
        *,
        costs: Costs | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        fallback_template: FallbackTemplate | None = None,
        optouts: OptOuts | None = None,
    ) -> None:
        self.providers = providers
        #: Checked before every send: an opted-out user is refused with :class:`OptedOut`.
        self.optouts = optouts if optouts is not None else OptOuts(store, settings)
        self.store = store
        self.settings = settings
        self.clock: Callable[[], datetime] = clock or _utcnow
        self.rng = rng or random.Random()
        self._costs = (
            costs
            if costs is not None
            else Costs.from_settings(store, settings, clock=lambda: self.clock(), providers=providers)
        )
        self.fallback = Fallback.from_settings(settings, fallback_template)
        cooldown = timedelta(seconds=settings.whatsapp_breaker_cooldown_seconds)
        #: Shared through the store by every process on it (docs/deployment.md).
        self.breakers = Breakers(
            settings.whatsapp_breaker_threshold,
            cooldown,
            store=store,
            sync=timedelta(seconds=settings.whatsapp_breaker_sync_seconds),
        )
        self.window_margin = timedelta(seconds=settings.whatsapp_window_margin_seconds)
        self.log = OutboundLog(store, providers, lambda: self.clock())
        self.facts = Facts(self)
        self.recovery = Recovery(self)
        #: The receipts of keyed sends (``idempotency_key``), so a send is never made twice.
        self.receipts = Receipts(store)
        #: Records what became of each send: breaker, price, log row, receipt.
        self.records = SendRecords(self)
        #: Sends that wait for a provider, or for the status of a send whose answer was lost.
        self.outbox = Outbox(self)

    @classmethod
    def from_bot(cls, bot: Bot) -> Router:
        """The router of a bot, configured from its settings."""
        return cls(bot.providers, bot.store, bot.settings, optouts=bot.optouts)

    @property
    def costs(self) -> Costs:
        """The cost ledger (``bot.costs``)."""
        return self._costs

    # --- facts ---------------------------------------------------------------------------------
    def policy_providers(self) -> list[str]:
        """Registered providers the policy allows, in order of preference (see :class:`Facts`)."""
        return self.facts.policy_providers()

    def window_open(self, provider: str, user: str, *, inbound: InboundMessage | None = None) -> bool:
        """Whether ``user``'s 24-hour window is open on ``provider``'s business number now."""
        return self.facts.window_open(provider, user, inbound=inbound)

    def fallback_for(self, user: str, message: Message | str | None) -> Template | None:
        """The template to send instead of ``message`` (``None`` when none is configured)."""
        return self.fallback.template_for(user, message)

    # --- decisions (no sending) ----------------------------------------------------------------
    def choose(self, to: str, message: Message | str, **options: Unpack[DecisionOptions]) -> tuple[str, str]:
        """``(provider name, reason)`` for this message (``options``: :class:`DecisionOptions`)."""
        decision = self.decide(to, message, **options)
        return decision.provider, decision.reason

    def decide(self, to: str, message: Message | str, **options: Unpack[DecisionOptions]) -> Decision:
        """The full :class:`Decision` for a message, without sending it.

        Raises:
            WindowClosed: a free-form message, the window closed and no fallback template.
            ConfigError: no provider can send.
        """
        pending = self.pending(
            to, message, options.get("inbound"), options.get("category"), options.get("provider")
        )
        decision = self.next_decision(pending)
        if decision is None:  # pragma: no cover - a first decision raises instead
            raise ConfigError("no provider can send this message")
        return decision

    def pending(
        self,
        to: str,
        message: Message | str,
        inbound: InboundMessage | None,
        category: str | None,
        provider: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> Pending:
        """The routing state of a new outbound message.

        Raises:
            InvalidRecipient: ``to`` is no WhatsApp address (or not text): before any window,
                opt-out or provider is looked at.
        """
        check_recipient(to, provider)
        message = coerce_message(message)
        return Pending(
            extra=dict(extra or {}),
            to=to,
            user=user_key(to),
            message=message,
            category=message_category(message, category),
            inbound=inbound,
            explicit=self._require(provider) if provider is not None else None,
            at=self.clock(),
        )

    def _require(self, name: str) -> str:
        if name not in self.providers:
            raise ConfigError(
                f"provider {name!r} is not configured (have: {sorted(self.providers)}); "
                "set its META_*/TWILIO_* variables or pick another provider"
            )
        return name

    def next_decision(self, req: Pending, cause: ProviderError | None = None) -> Decision | None:
        """The first decision (``cause=None``) or the next one after ``cause`` (``None``: give up)."""
        choice = choose(self.facts.situation(req, cause))
        return None if choice is None else self.fallback.apply(choice, req.user, req.message, req.category)

    # --- the plan: decide, attempt, fail over, record ------------------------------------------
    def plan(self, req: Pending) -> RoutePlan:
        """Route ``req``: yields each :class:`Attempt`, receives its outcome, returns the receipt
        (or raises the last provider error when nothing worked)."""
        try:
            decision = self.next_decision(req)
        except (WindowClosed, UnsupportedMessage) as exc:
            if req.outbox is None:  # a queued send's own row says it
                reason = "window-closed" if isinstance(exc, WindowClosed) else "unsupported"
                self.log.failure(
                    exc.provider, req.to, req.message, reason, exc, req.category, extra=req.extra
                )
            raise
        assert decision is not None
        while True:
            req.decision = decision
            now = self.clock()
            breaker = self.breakers[decision.provider]
            if req.queue and not breaker.available(now):
                # Every provider the policy may use is skipped for now: waiting in the outbox
                # beats seconds of retries against a provider known to be down.
                open_ = ProviderDown(
                    f"its circuit breaker is open after {breaker.failures} failures in a row "
                    "(WHATSAPP_BREAKER_THRESHOLD); it is tried again after WHATSAPP_BREAKER_COOLDOWN_SECONDS",
                    provider=decision.provider,
                )
                open_.attempts = 0
                raise open_
            breaker.before_attempt(now)
            sender = self.providers[decision.provider]
            correlation = new_correlation() if getattr(sender, "correlates", False) else None
            outcome = yield Attempt(decision.provider, req.to, decision.message, correlation)
            if isinstance(outcome, SendReceipt):
                return self.accepted(req, decision, outcome)
            if isinstance(outcome, OutcomeUnknown):
                # It may be on its way: no failover, no failed row (the outbox keeps it, and a
                # status resolves it); priced, since it may have been charged.
                if outcome.sent_message_ids:
                    rest = self.recovery.partial_success(req, decision, outcome.sent_message_ids)
                    if rest is not None:
                        req.message = rest
                self.records.price_unknown(req, decision)
                raise outcome
            nxt = self._after_failure(req, decision, outcome)
            if nxt is None:
                raise outcome
            decision = nxt

    def _after_failure(self, req: Pending, decision: Decision, exc: ProviderError) -> Decision | None:
        """Log the failure, feed the breaker, and pick the next attempt (``None``: give up)."""
        if exc.sent_message_ids:
            # A long text failed part-way: the first parts did go out. Log and price them, and
            # let a failover send only the rest, so the user never gets a part twice.
            rest = self.recovery.partial_success(req, decision, exc.sent_message_ids)
            if rest is not None:
                req.message = rest
        self.log.failure(
            decision.provider,
            req.to,
            decision.message,
            decision.reason,
            exc,
            decision.category,
            extra={**decision.extra, **req.extra},
        )
        if isinstance(exc, OutcomeUnknown):
            self.records.price_unknown(req, decision)
        req.tried.append((decision.provider, decision.fallback))
        step = after_failure(exc, fallback=decision.fallback, template=is_template(decision.message))
        if step == "failover":
            if isinstance(exc, Undeliverable):
                self.breakers[decision.provider].success()  # it answered; this user is unreachable there
            else:
                self.breakers[decision.provider].failure(self.clock())
            try:
                nxt = self.next_decision(req, exc)
            except WindowClosed:
                nxt = None
            if nxt is not None:
                logger.warning(
                    "%s failed with %s; failing over to %s",
                    decision.provider,
                    type(exc).__name__,
                    nxt.provider,
                )
            return nxt
        self.breakers[decision.provider].success()  # it answered; the message was at fault
        if step == "fallback":
            template = self.fallback_for(req.user, req.message)
            if template is not None:
                extra = {"choice": decision.reason, "replaces_error": exc.code}
                return self.fallback.decision(decision.provider, "fallback-template", template, False, extra)
        return None

    def opt_in(self, user: str, *providers: str) -> None:
        """Record that ``user`` may be written to from these providers' business numbers (an
        opt-in collected elsewhere), besides the numbers they wrote to. Business-initiated
        messages go only to those numbers (docs/routing.md, "Reachability")."""
        self.facts.opt_in(user_key(user), *(self._require(p) for p in providers))

    def accepted(self, req: Pending, decision: Decision, receipt: SendReceipt) -> SendReceipt:
        """Record a send the provider accepted (see :meth:`SendRecords.accepted`)."""
        return self.records.accepted(req, decision, receipt)

    # --- the two faces ---------------------------------------------------------------------------
    def send(self, to: str, message: Message | str, **options: Unpack[SendOptions]) -> SendReceipt:
        """Route and send one message (sync). Raises the provider's error when nothing worked.

        ``options`` are those of :class:`SendOptions` (``inbound``, ``category``, ``provider``,
        ``exempt``, ``extra``, ``idempotency_key``, ``queue``). When no provider can take the
        message now it is kept in the outbox and a receipt with status ``queued`` is returned
        (``queue=False``: the error is raised); when its answer was lost after the request
        left, status ``unknown`` (docs/deployment.md, "The outbox").
        """
        return run_sync(self.route(to, message, **options), self.providers)

    async def send_async(
        self, to: str, message: Message | str, **options: Unpack[SendOptions]
    ) -> SendReceipt:
        """Route and send one message (async face of :meth:`send`)."""
        return await run_async(self.route(to, message, **options), self.providers)

    def route(
        self,
        to: str,
        message: Message | str,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
        exempt: bool = False,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        queue: bool = True,
    ) -> RoutePlan:
        """The plan of one send, which :meth:`send` and :meth:`send_async` run (see
        :class:`SendOptions` for the arguments). A user who opted out is refused with
        :class:`OptedOut` before any request, unless ``exempt``."""

        def fresh() -> RoutePlan:
            req = self.pending(to, message, inbound, category, provider, extra)
            req.key = idempotency_key  # accepted() keeps the receipt with the log row
            if not exempt:
                self.optouts.check(req.user)
            req.queue = queue
            return self.outbox.guard(req, self.plan(req), idempotency_key)

        return self.receipts.once(idempotency_key, fresh)

    def on_status(self, status: StatusUpdate) -> None:
        """Late results of sends: price the message from the status, and handle failures
        (see :class:`~eki_whatsapp.routing.recovery.Recovery`); a status that echoes the key of
        a send whose answer was lost says it went out (:meth:`Outbox.resolve`)."""
        if status.correlation is not None:
            self.outbox.resolve(status)
        self.recovery.on_status(status)


def check_recipient(to: object, provider: str | None = None) -> None:
    """Refuse what no provider can send to, before any routing: ``to`` must be a WhatsApp address
    (``+5511987654321``, ``whatsapp:+5511…``, a BSUID ``US.1349…``); raises
    :class:`~eki_whatsapp.providers.base.InvalidRecipient` (``attempts == 0``) otherwise."""
    if type(to) is str and to.isdigit() and 6 <= len(to) <= 15 and to[0] != "0":
        return  # digits as providers send them, stored users: the common case, no regex
    if not isinstance(to, str):
        reason = (
            f"'to' must be a str, not {type(to).__name__} ({to!r}): pass the user's WhatsApp number "
            "('+5511987654321') or business-scoped user id ('US.1349...'), e.g. message.sender"
        )
    elif addresses.parse(to) is None:
        reason = (
            f"'to' is {to!r}: pass an E.164 phone number ('+5511987654321', 'whatsapp:+5511...') "
            "or a business-scoped user id ('US.1349...')"
        )
    else:
        return
    error = InvalidRecipient(reason, provider=provider or "")
    error.attempts = 0
    raise error
