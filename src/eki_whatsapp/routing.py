"""The :class:`Router`: which provider sends each outbound message, and the outbound log.

Every outbound message — ``ctx.reply()`` and ``bot.send()`` alike — goes through
:meth:`Router.send` (or :meth:`Router.send_async`), which decides, sends, fails over when the
provider is at fault, prices the message in the cost ledger and writes one log row per message
id with the ``reason`` for the choice.

Policies (``WHATSAPP_PROVIDER``):

* ``meta`` / ``twilio`` — only that provider.
* ``dual`` — a reply goes out on the channel the message came in on (``reply-channel``); a
  business-initiated free-form message uses the provider where the user's 24-hour window is
  open (``window-open``); a template goes to the cheapest provider priced with the window in
  mind (ties to the open window: ``window-open``); with no window open anywhere: Meta while its
  monthly free allowance lasts (``free-allowance``), else the weights if configured
  (``weighted``), else the cheaper provider by the price table (``cheapest``). When the chosen
  provider fails with an error another provider could avoid (:class:`ProviderDown`,
  :class:`RateLimited` after the provider's own retries, :class:`AuthError`) the message goes
  out through the other one (``failover:ProviderDown``); a provider that keeps failing is
  skipped for a cool-down (circuit breaker) and then probed.

In every policy a free-form message to a user whose window is closed is not sent blindly: the
configured fallback template goes instead (``fallback-template``), or :class:`WindowClosed` is
raised. Window failures reported later by status webhooks (131047 / 63016) are handled the same
way in :meth:`Router.on_status`.

Decisions are made in plain code (:meth:`Router.decide`); :meth:`send` and :meth:`send_async`
are thin shells that do the I/O.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .addresses import normalize
from .costs import Costs
from .errors import ConfigError
from .events import InboundMessage, StatusUpdate
from .optout import OptOuts
from .providers.base import (
    AuthError,
    Provider,
    ProviderDown,
    ProviderError,
    RateLimited,
    SendReceipt,
    WindowClosed,
)
from .store.base import LogEntry, Store

if TYPE_CHECKING:
    from .bot import Bot
    from .settings import Settings

logger = logging.getLogger("eki_whatsapp.routing")

__all__ = [
    "FAILOVER_ERRORS",
    "CircuitBreaker",
    "Decision",
    "Router",
    "coerce_message",
    "is_template",
    "message_kind",
    "message_text",
]

#: Errors another provider could avoid: the message fails over when one of these is raised.
FAILOVER_ERRORS: tuple[type[ProviderError], ...] = (ProviderDown, RateLimited, AuthError)

WINDOW = timedelta(hours=24)
_KV = "eki.routing"

FallbackTemplate = Callable[[str, Any], Any]


def coerce_message(message: Any) -> Any:
    """A ``str`` becomes a :class:`~eki_whatsapp.messages.Text`; message models pass through."""
    if isinstance(message, str):
        from .messages import Text

        return Text(message)
    return message


def message_kind(message: Any) -> str:
    """The ``kind`` of an outbound message model (``text``, ``template``, ...)."""
    return str(getattr(message, "kind", None) or type(message).__name__.lower())


def message_text(message: Any) -> str | None:
    """The text of a message for the log (body, text or caption), if it has one; a template is
    logged by name (``template eki_recordatorio``), so the log says what went out."""
    for attr in ("body", "text", "caption"):
        value = getattr(message, attr, None)
        if isinstance(value, str):
            return value
    if is_template(message) and isinstance(getattr(message, "name", None), str):
        return f"template {message.name}"
    return None


def is_template(message: Any) -> bool:
    """Whether ``message`` is a template (the only kind allowed outside the 24-hour window)."""
    return message_kind(message) == "template"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------------------------
class CircuitBreaker:
    """Skips a provider that keeps failing, for a cool-down, then lets one probe through.

    ``closed`` (normal) → ``open`` after ``threshold`` consecutive failures → after ``cooldown``
    ``half-open``: the next send is a probe; its success closes the breaker, its failure opens
    it for another cool-down. State lives in the process (each worker learns on its own).
    """

    def __init__(self, threshold: int = 3, cooldown: timedelta = timedelta(seconds=60)) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: datetime | None = None
        self.probing = False
        self._lock = threading.Lock()

    def state(self, now: datetime) -> str:
        """``closed``, ``open`` or ``half-open``."""
        if self.opened_at is None:
            return "closed"
        return "open" if now - self.opened_at < self.cooldown else "half-open"

    def available(self, now: datetime) -> bool:
        """Whether the provider may be chosen now (open: no; half-open: while no probe runs)."""
        state = self.state(now)
        return state == "closed" or (state == "half-open" and not self.probing)

    def before_attempt(self, now: datetime) -> None:
        """Mark a half-open breaker's probe as running."""
        with self._lock:
            if self.state(now) == "half-open":
                self.probing = True

    def success(self) -> None:
        """The provider worked: close."""
        with self._lock:
            self.failures = 0
            self.opened_at = None
            self.probing = False

    def failure(self, now: datetime) -> None:
        """The provider failed with an error another provider could avoid."""
        with self._lock:
            self.failures += 1
            if self.probing or self.opened_at is not None or self.failures >= self.threshold:
                self.opened_at = now
            self.probing = False

    def __repr__(self) -> str:
        return f"CircuitBreaker(failures={self.failures}, opened_at={self.opened_at})"


# --------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Decision:
    """Which provider sends what, and why.

    Attributes:
        provider: the provider to send through.
        reason: recorded in the log row (``reply-channel``, ``window-open``, ``free-allowance``,
            ``weighted``, ``cheapest``, ``explicit``, ``policy``, ``fallback-template``,
            ``failover:ProviderDown``, ``failover:circuit-open``, ...).
        message: what to send — the message, or the fallback template replacing it.
        category: the pricing category of what is sent.
        in_window: whether the user's 24-hour window is open on that provider.
        fallback: ``True`` when the fallback template replaces a free-form message.
        extra: more detail for the log row (e.g. the choice behind a fallback or failover).
    """

    provider: str
    reason: str
    message: Any
    category: str | None
    in_window: bool
    fallback: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Request:
    """One outbound message while it is being routed."""

    to: str
    user: str
    message: Any
    category: str | None
    inbound: InboundMessage | None
    explicit: str | None
    at: datetime
    tried: list[tuple[str, bool]] = field(default_factory=list)  # (provider, fallback)
    #: Added to the log rows of this message (e.g. ``{"staff": "lucia"}`` for a console reply).
    extra: Mapping[str, Any] = field(default_factory=dict)


class Router:
    """Chooses the provider for each outbound message, sends, fails over, logs and prices.

    Args:
        providers: ``{"meta": ..., "twilio": ...}``.
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
        fallback_template: Any = None,
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
            costs if costs is not None else Costs.from_settings(store, settings, clock=lambda: self.clock())
        )
        self._fallback = fallback_template if fallback_template is not None else _settings_fallback(settings)
        cooldown = timedelta(seconds=settings.whatsapp_breaker_cooldown_seconds)
        self.breakers: dict[str, CircuitBreaker] = {
            name: CircuitBreaker(settings.whatsapp_breaker_threshold, cooldown) for name in ("meta", "twilio")
        }
        self.window_margin = timedelta(seconds=settings.whatsapp_window_margin_seconds)

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
        """Configured providers the policy allows, in order of preference."""
        return [name for name in self.settings.enabled_providers if name in self.providers]

    def window_open(self, provider: str, user: str, *, inbound: InboundMessage | None = None) -> bool:
        """Whether ``user``'s 24-hour window is open on ``provider``'s business number now."""
        if provider not in self.providers:
            return False
        business: str | None = self.providers[provider].business_number or None
        if business is not None and not business.isdigit():
            business = None  # a Twilio Messaging Service (MG...): any of its numbers
        last = self.store.last_inbound_at(provider, business, user)
        if inbound is not None and inbound.provider == provider and inbound.sender == user:
            last = inbound.timestamp if last is None else max(last, inbound.timestamp)
        if last is None:
            return False
        return self.clock() - last < WINDOW - self.window_margin

    def fallback_for(self, user: str, message: Any) -> Any:
        """The template to send instead of ``message`` (``None`` when none is configured)."""
        if self._fallback is None:
            return None
        if callable(self._fallback) and not hasattr(self._fallback, "kind"):
            return self._fallback(user, message)
        return self._fallback

    def _category(self, message: Any, given: str | None) -> str | None:
        if given is not None:
            return given.lower()
        own = getattr(message, "category", None)
        if isinstance(own, str):
            return own.lower()
        return None if is_template(message) else "service"

    # --- the decision (pure: reads the Store, sends nothing) -----------------------------------
    def choose(
        self,
        to: str,
        message: Any,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
    ) -> tuple[str, str]:
        """``(provider name, reason)`` for this message."""
        decision = self.decide(to, message, inbound=inbound, category=category, provider=provider)
        return decision.provider, decision.reason

    def decide(
        self,
        to: str,
        message: Any,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
    ) -> Decision:
        """The full :class:`Decision` for a message, without sending it.

        Raises:
            WindowClosed: a free-form message, the window closed and no fallback template.
            ConfigError: no provider can send.
        """
        request = self._request(to, message, inbound, category, provider)
        decision = self._decide(request)
        if decision is None:  # pragma: no cover - _decide raises instead for a first decision
            raise ConfigError("no provider can send this message")
        return decision

    def _request(
        self,
        to: str,
        message: Any,
        inbound: InboundMessage | None,
        category: str | None,
        provider: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> _Request:
        message = coerce_message(message)
        return _Request(
            extra=dict(extra or {}),
            to=to,
            user=_user_key(to),
            message=message,
            category=self._category(message, category),
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

    def _decide(self, req: _Request, cause: ProviderError | None = None) -> Decision | None:
        """First decision (``cause=None``) or the next one after ``cause`` (``None``: give up)."""
        now = req.at = self.clock()
        tried = {name for name, _ in req.tried}
        if req.explicit is not None:
            if cause is not None:
                return None  # an explicit provider is not failed over
            pool = [req.explicit]
        else:
            pool = [p for p in self.policy_providers() if p not in tried]
            if not pool:
                if cause is not None:
                    return None
                raise ConfigError(
                    f"no provider can send with WHATSAPP_PROVIDER={self.settings.whatsapp_provider}: "
                    "configure META_* or TWILIO_* credentials (see docs/configuration.md)"
                )
        healthy = [p for p in pool if self.breakers[p].available(now)] or pool
        windows = {p: self.window_open(p, req.user, inbound=req.inbound) for p in pool}
        prefix = f"failover:{type(cause).__name__}" if cause is not None else None

        if req.explicit is not None:
            return self._with_window(req, req.explicit, "explicit", windows[req.explicit])
        inbound = req.inbound
        if inbound is not None and cause is None and inbound.provider in pool:
            others_can = (
                is_template(req.message)
                or self._fallback is not None
                or any(windows[p] for p in healthy if p != inbound.provider)
            )
            if inbound.provider in healthy or not others_can:
                # (With its breaker open, the channel is still better than no way at all.)
                return self._with_window(req, inbound.provider, "reply-channel", windows[inbound.provider])
            prefix = "failover:circuit-open"
        if len(pool) == 1 and self.settings.whatsapp_provider != "dual":
            name = pool[0]
            return self._with_window(req, name, prefix or "policy", windows[name])

        # Business-initiated (or a reply that cannot use its channel).
        if not is_template(req.message):
            # Free-form: only where the window is open (a sick provider rather than none).
            open_now = [p for p in healthy if windows[p]] or [p for p in pool if windows[p]]
            if open_now:
                name = self._cheapest(req, open_now, windows, req.category)
                return self._with_window(req, name, prefix or "window-open", True)
        elif any(windows[p] for p in healthy):
            # A template may go anywhere; the open window makes some categories free there, and
            # wins ties so the user hears from the number they wrote to.
            name = self._cheapest(req, healthy, windows, req.category)
            reason = "window-open" if windows[name] else "cheapest"
            return self._with_window(req, name, prefix or reason, windows[name])
        send_category = req.category
        if not is_template(req.message):
            send_category = self.settings.whatsapp_fallback_template_category
        name, why = self._business_choice(req, healthy, windows, send_category)
        return self._with_window(req, name, prefix or why, False)

    def _business_choice(
        self, req: _Request, healthy: list[str], windows: Mapping[str, bool], category: str | None
    ) -> tuple[str, str]:
        """Allowance, then weights, then the cheapest."""
        if "meta" in healthy and self._costs.free_allowance.get("meta"):
            quote = self._costs.quote(
                "meta",
                req.user,
                category,
                business=self.providers["meta"].business_number,
                in_window=windows["meta"],
                at=req.at,
            )
            if quote.note == "free-allowance":
                return "meta", "free-allowance"
        weights = {p: self.settings.whatsapp_weights.get(p, 0.0) for p in healthy}
        if self.settings.whatsapp_weights and sum(weights.values()) > 0:
            point = self.rng.random() * sum(weights.values())
            for name, weight in weights.items():
                if weight <= 0:
                    continue
                point -= weight
                if point < 0:
                    return name, "weighted"
            return max(weights, key=lambda p: weights[p]), "weighted"
        return self._cheapest(req, healthy, windows, category), "cheapest"

    def _cheapest(
        self, req: _Request, names: list[str], windows: Mapping[str, bool], category: str | None
    ) -> str:
        if len(names) == 1:
            return names[0]
        priced = []
        for index, name in enumerate(names):
            quote = self._costs.quote(
                name,
                req.user,
                category,
                business=self.providers[name].business_number,
                in_window=windows[name],
                at=req.at,
            )
            # Unknown costs sort after known ones; ties go to an open window, then to the
            # policy's order (Meta first).
            priced.append((quote.amount is None, quote.amount or 0, not windows[name], index, name))
        return min(priced)[4]

    def _with_window(self, req: _Request, name: str, reason: str, in_window: bool) -> Decision:
        """The decision, with the fallback template when a free-form message meets a closed window."""
        if in_window or is_template(req.message):
            return Decision(name, reason, req.message, req.category, in_window)
        template = self.fallback_for(req.user, req.message)
        if template is None:
            raise WindowClosed(
                f"the 24-hour window of {req.user} on {name} is closed and no fallback template is "
                "configured: send a Template, or set WHATSAPP_FALLBACK_TEMPLATE "
                "(and WHATSAPP_FALLBACK_TEMPLATE_CONTENT_SID for Twilio)",
                provider=name,
            )
        extra = {"fallback_template": True, "choice": reason, "original_kind": message_kind(req.message)}
        failover = reason.startswith("failover:")
        return Decision(
            name,
            reason if failover else "fallback-template",
            template,
            self.settings.whatsapp_fallback_template_category,
            in_window,
            fallback=True,
            extra=extra,
        )

    def _after_failure(self, req: _Request, decision: Decision, exc: ProviderError) -> Decision | None:
        """Log the failure, feed the breaker, and pick the next attempt (``None``: give up)."""
        if exc.sent_message_ids:
            # A long text failed part-way: the first parts did go out. Log and price them, and
            # let a failover send only the rest, so the user never gets a part twice.
            rest = self._partial_success(req, decision, exc.sent_message_ids)
            if rest is not None:
                req.message = rest
        self._log_failure(
            decision.provider,
            req.to,
            decision.message,
            decision.reason,
            exc,
            decision.category,
            extra={**decision.extra, **req.extra},
        )
        req.tried.append((decision.provider, decision.fallback))
        now = self.clock()
        if isinstance(exc, FAILOVER_ERRORS):
            self.breakers[decision.provider].failure(now)
            try:
                nxt = self._decide(req, exc)
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
        if isinstance(exc, WindowClosed) and not decision.fallback and not is_template(decision.message):
            template = self.fallback_for(req.user, req.message)
            if template is not None:
                return Decision(
                    decision.provider,
                    "fallback-template",
                    template,
                    self.settings.whatsapp_fallback_template_category,
                    False,
                    fallback=True,
                    extra={"fallback_template": True, "choice": decision.reason, "replaces_error": exc.code},
                )
        return None

    def _partial_success(self, req: _Request, decision: Decision, sent: tuple[str, ...]) -> Any:
        """Log the parts of a split text that were accepted; return a ``Text`` of the rest."""
        from .formatting import split
        from .messages import Text

        message = decision.message
        provider = self.providers[decision.provider]
        if not isinstance(message, Text):
            return None
        parts = split(message.body, int(getattr(provider, "text_limit", 4096)))
        for index, message_id in enumerate(sent):
            self.store.log_outbound(
                LogEntry(
                    direction="out",
                    provider=decision.provider,
                    type="text",
                    message_id=message_id,
                    sender=provider.business_number,
                    recipient=_user_key(req.to),
                    text=parts[index] if index < len(parts) else None,
                    status="accepted",
                    timestamp=self.clock(),
                    reason=decision.reason,
                    category=decision.category,
                    extra={**decision.extra, "part": index + 1, "parts": len(parts), "partial": True},
                )
            )
        try:
            self._costs.record_send(
                decision.provider,
                sent,
                req.user,
                decision.category,
                business=provider.business_number,
                in_window=decision.in_window,
                at=req.at,
            )
        except Exception:
            logger.exception("pricing the parts sent before a failure failed")
        position = 0
        for part in parts[: len(sent)]:
            found = message.body.find(part, position)
            position = found + len(part) if found >= 0 else position
        rest = message.body[position:].strip()
        return Text(rest, preview_url=message.preview_url) if rest else None

    def _after_success(self, req: _Request, decision: Decision, receipt: SendReceipt) -> SendReceipt:
        self.breakers[decision.provider].success()
        ids = receipt.message_ids or (receipt.message_id,)
        try:
            provider = self.providers[decision.provider]
            self._costs.record_send(
                receipt.provider,
                ids,
                req.user,
                decision.category,
                business=provider.business_number,
                in_window=decision.in_window,
                at=req.at,
            )
        except Exception:
            logger.exception("pricing message %s failed; the send itself succeeded", receipt.message_id)
        self._log_success(
            receipt,
            req.to,
            decision.message,
            decision.reason,
            decision.category,
            {**decision.extra, **req.extra},
        )
        return receipt

    def _first(self, req: _Request) -> Decision:
        try:
            decision = self._decide(req)
        except WindowClosed as exc:
            self._log_failure(
                exc.provider, req.to, req.message, "window-closed", exc, req.category, extra=req.extra
            )
            raise
        assert decision is not None
        self.breakers[decision.provider].before_attempt(self.clock())
        return decision

    # --- the two faces ---------------------------------------------------------------------------
    def send(
        self,
        to: str,
        message: Any,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
        exempt: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> SendReceipt:
        """Route and send one message (sync). Raises the provider's error when nothing worked.

        Args:
            exempt: send even to a user who opted out (otherwise :class:`OptedOut` is raised
                before any request).
            extra: added to the message's log rows (the console logs ``{"staff": name}``).
        """
        req = self._request(to, message, inbound, category, provider, extra)
        if not exempt:
            self.optouts.check(req.user)
        decision = self._first(req)
        while True:
            try:
                receipt = self.providers[decision.provider].send(to, decision.message)
            except ProviderError as exc:
                nxt = self._after_failure(req, decision, exc)
                if nxt is None:
                    raise
                decision = nxt
                self.breakers[decision.provider].before_attempt(self.clock())
                continue
            return self._after_success(req, decision, receipt)

    async def send_async(
        self,
        to: str,
        message: Any,
        *,
        inbound: InboundMessage | None = None,
        category: str | None = None,
        provider: str | None = None,
        exempt: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> SendReceipt:
        """Route and send one message (async face of :meth:`send`)."""
        req = self._request(to, message, inbound, category, provider, extra)
        if not exempt:
            self.optouts.check(req.user)
        decision = self._first(req)
        while True:
            try:
                receipt = await self.providers[decision.provider].send_async(to, decision.message)
            except ProviderError as exc:
                nxt = self._after_failure(req, decision, exc)
                if nxt is None:
                    raise
                decision = nxt
                self.breakers[decision.provider].before_attempt(self.clock())
                continue
            return self._after_success(req, decision, receipt)

    # --- late results ------------------------------------------------------------------------------
    def on_status(self, status: StatusUpdate) -> None:
        """Late results of sends: price the message from the status, and handle failures.

        A window failure (Meta 131047, Twilio 63016) of a free-form message is answered with the
        fallback template on the same provider (or logged as an error when none is configured);
        a failure another provider could avoid fails a text message over to the other provider.
        Each message is handled once, however often its status is delivered.
        """
        if status.pricing is None and not status.failed:
            return  # nothing to price, nothing to recover: the common "read"/"delivered" case
        row = self.store.get_message(status.provider, status.message_id)
        try:
            self._costs.record_status(
                status,
                category=row.category if row is not None else None,
                sent_at=row.timestamp if row is not None and row.direction == "out" else None,
            )
        except Exception:
            logger.exception("pricing status %s of %s failed", status.status, status.message_id)
        if not status.failed or row is None or row.direction != "out":
            return
        error = status.error
        if error is None:
            return
        guard = f"late:{status.provider}:{status.message_id}"
        if self.store.get_value(_KV, guard):
            return
        user = row.recipient or status.recipient
        if not user:
            return
        if isinstance(error, WindowClosed):
            if row.type == "template" or row.extra.get("fallback_template"):
                return
            self.store.set_value(_KV, guard, True)
            template = self.fallback_for(user, row.text)
            if template is None:
                logger.error(
                    "%s: message %s to %s failed because the 24-hour window is closed and no fallback "
                    "template is configured (set WHATSAPP_FALLBACK_TEMPLATE)",
                    status.provider,
                    status.message_id,
                    user,
                )
                return
            decision = Decision(
                status.provider,
                "fallback-template",
                template,
                self.settings.whatsapp_fallback_template_category,
                False,
                fallback=True,
                extra={"fallback_template": True, "replaces": status.message_id, "late": True},
            )
            req = _Request(user, user, template, decision.category, None, status.provider, self.clock())
            self._send_decided(req, decision)
        elif isinstance(error, FAILOVER_ERRORS) and row.type == "text" and row.text:
            if self.settings.whatsapp_provider != "dual":
                return
            self.store.set_value(_KV, guard, True)
            self.breakers[status.provider].failure(self.clock())
            from .messages import Text

            req = self._request(user, Text(row.text), None, row.category, None)
            req.tried.append((status.provider, False))
            try:
                nxt = self._decide(req, error)
            except WindowClosed:
                nxt = None
            if nxt is None:
                logger.error(
                    "message %s failed late (%s) and no provider can take it over", row.message_id, error
                )
                return
            self._send_decided(
                req, replace(nxt, extra={**nxt.extra, "replaces": status.message_id, "late": True})
            )

    def _send_decided(self, req: _Request, decision: Decision) -> SendReceipt | None:
        """Send an already decided message from a status hook (errors are logged, not raised)."""
        try:
            receipt = self.providers[decision.provider].send(req.to, decision.message)
        except ProviderError as exc:
            self._log_failure(
                decision.provider,
                req.to,
                decision.message,
                decision.reason,
                exc,
                decision.category,
                extra=decision.extra,
            )
            logger.error("late %s to %s failed: %s", decision.reason, req.user, exc)
            return None
        return self._after_success(req, decision, receipt)

    # --- outbound log ---------------------------------------------------------------------------
    def _log_success(
        self,
        receipt: SendReceipt,
        to: str,
        message: Any,
        reason: str,
        category: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        provider = self.providers[receipt.provider]
        ids = receipt.message_ids or (receipt.message_id,)
        for index, message_id in enumerate(ids):
            row_extra = dict(extra or {})
            if len(ids) > 1:
                row_extra.update(part=index + 1, parts=len(ids))
            self.store.log_outbound(
                LogEntry(
                    direction="out",
                    provider=receipt.provider,
                    type=receipt.kind or message_kind(message),
                    message_id=message_id,
                    sender=provider.business_number,
                    recipient=_user_key(to),
                    text=message_text(message),
                    status=receipt.status or "accepted",
                    raw=dict(receipt.raw),
                    timestamp=receipt.sent_at or self.clock(),
                    attempts=receipt.attempts,
                    reason=reason,
                    category=category,
                    extra=row_extra,
                )
            )

    def _log_failure(
        self,
        name: str,
        to: str,
        message: Any,
        reason: str,
        exc: ProviderError,
        category: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        provider = self.providers.get(name)
        self.store.log_outbound(
            LogEntry(
                direction="out",
                provider=name,
                type=message_kind(message),
                sender=provider.business_number if provider is not None else None,
                recipient=_user_key(to),
                text=message_text(message),
                status="failed",
                error_code=exc.code,
                error_message=exc.message,
                raw=exc.raw if isinstance(exc.raw, dict) else None,
                timestamp=self.clock(),
                attempts=int(getattr(exc, "attempts", 1) or 1),
                reason=reason,
                category=category,
                extra={**(extra or {}), "error": type(exc).__name__},
            )
        )


def _settings_fallback(settings: Settings) -> Any:
    """The fallback template of ``WHATSAPP_FALLBACK_TEMPLATE*`` (``None`` when not set)."""
    if not settings.whatsapp_fallback_template:
        return None
    from .messages import Template

    return Template(
        settings.whatsapp_fallback_template,
        settings.whatsapp_fallback_template_language,
        content_sid=settings.whatsapp_fallback_template_content_sid,
    )


def _user_key(to: str) -> str:
    """The user as stored: digits without ``whatsapp:``/``+``, or the BSUID as given."""
    return normalize(to)
