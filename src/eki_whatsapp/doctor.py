"""``eki-whatsapp doctor``: check the configuration and, with ``online=True``, the credentials.

Every finding says what is wrong and how to fix it — the setup guide's troubleshooting, built in:
verify-token mismatch, expired temporary (24 h) Meta tokens, unverified phone numbers, missing
webhook subscriptions, HTTPS.

Example::

    from eki_whatsapp import Settings
    from eki_whatsapp.doctor import diagnose

    for check in diagnose(Settings(), online=True):
        print(check.status, check.title, check.detail)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx

from .i18n import gettext as _
from .settings import Settings

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: ``status`` is ``ok``, ``warn`` or ``fail``; ``fix`` says what to do."""

    title: str
    status: Status
    detail: str = ""
    fix: str = ""


def diagnose(
    settings: Settings,
    *,
    online: bool = False,
    check_webhook: bool = False,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 10.0,
) -> list[Check]:
    """Run every check. ``online`` calls each configured provider once (read-only requests);
    ``check_webhook`` asks the running webhook (``WHATSAPP_WEBHOOK_URL``) for Meta's challenge."""
    from .providers import doctor_checks

    checks = offline_checks(settings)
    if online or check_webhook:
        with httpx.Client(transport=transport, timeout=timeout) as client:
            if online:
                for name in settings.enabled_providers:
                    if not settings.missing_for(name):
                        checks.extend(doctor_checks(name).online_checks(settings, client))
            if check_webhook:
                checks.append(webhook_check(settings, client))
    if online and settings.whatsapp_runner == "celery" and settings.whatsapp_celery_broker_url:
        checks.append(broker_check(settings.whatsapp_celery_broker_url, timeout))
    return checks


def broker_check(url: str, timeout: float = 10.0) -> Check:
    """Whether the Celery broker accepts a connection."""
    try:
        from kombu.connection import Connection
    except ImportError:
        return Check(_("Celery broker"), "fail", _("celery: Celery is not installed"))
    try:
        with Connection(url, connect_timeout=timeout) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return Check(
            _("Celery broker"),
            "fail",
            _("{url}: {error}").format(url=_redacted(url), error=type(exc).__name__),
            _("start the broker or fix WHATSAPP_CELERY_BROKER_URL; workers and web processes need it"),
        )
    return Check(_("Celery broker"), "ok", _("{url} accepts connections").format(url=_redacted(url)))


# --- offline ---------------------------------------------------------------------------------------
def offline_checks(s: Settings) -> list[Check]:
    """The policy, each enabled provider's credentials and settings, the public webhook URL."""
    from .providers import doctor_checks

    checks = [
        Check(_("policy"), "ok", f"WHATSAPP_PROVIDER={s.whatsapp_provider}: {', '.join(s.enabled_providers)}")
    ]
    for variable in s.trimmed_variables:
        checks.append(
            Check(
                variable,
                "warn",
                _("its value has spaces around it (often inside quotes in .env); they are ignored"),
                _("remove them from the value so that every tool reads the same thing"),
            )
        )
    for provider in s.enabled_providers:
        missing = s.missing_for(provider)
        if missing:
            checks.append(
                Check(
                    _("{provider} credentials").format(provider=provider),
                    "fail",
                    _("missing {names}").format(names=", ".join(missing)),
                    _(
                        "set them in .env (docs/meta-setup.md, docs/twilio-setup.md) or choose another "
                        "WHATSAPP_PROVIDER"
                    ),
                )
            )
        else:
            checks.append(
                Check(_("{provider} credentials").format(provider=provider), "ok", _("all variables set"))
            )
    for provider in s.enabled_providers:
        checks.extend(doctor_checks(provider).offline_checks(s))
    checks.extend(_api_url_checks(s))
    checks.append(_webhook_url_check(s))
    checks.extend(_runner_checks(s))
    return checks


def _runner_checks(s: Settings) -> list[Check]:
    """``WHATSAPP_RUNNER=celery``: Celery installed, an app to send with, the workers' bot."""
    if s.whatsapp_runner != "celery":
        return []
    try:
        import celery  # noqa: F401
    except ImportError:
        return [
            Check(
                "WHATSAPP_RUNNER",
                "fail",
                _("celery: Celery is not installed"),
                _("install the extra: pip install 'eki-whatsapp[celery]'"),
            )
        ]
    checks = []
    if s.whatsapp_celery_app:
        checks.append(Check("WHATSAPP_CELERY_APP", "ok", s.whatsapp_celery_app))
    elif s.whatsapp_celery_broker_url:
        checks.append(Check("WHATSAPP_CELERY_BROKER_URL", "ok", _redacted(s.whatsapp_celery_broker_url)))
    else:
        checks.append(
            Check(
                "WHATSAPP_CELERY_BROKER_URL",
                "fail",
                _("WHATSAPP_RUNNER=celery and no Celery app to send the tasks with"),
                _(
                    "set WHATSAPP_CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) or "
                    "WHATSAPP_CELERY_APP=package.module:app (Django uses the project's app)"
                ),
            )
        )
    if not s.whatsapp_bot:
        checks.append(
            Check(
                "WHATSAPP_BOT",
                "warn",
                _("not set: `eki-whatsapp worker` needs it to build your bot"),
                _("set WHATSAPP_BOT=package.module:create_bot for the workers (not needed with Django)"),
            )
        )
    return checks


def _redacted(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_url_checks(s: Settings) -> list[Check]:
    """Provider API URLs changed from the real ones, e.g. left over from ``eki-whatsapp sandbox``
    (each provider's doctor module names its variable, value and default: ``api_url(s)``)."""
    from .providers import BUILTIN, doctor_checks

    checks = []
    for variable, url, default in (doctor_checks(name).api_url(s) for name in sorted(BUILTIN)):
        if url == default:
            continue
        if _is_loopback(url) and s.whatsapp_env == "production":
            checks.append(
                Check(
                    variable,
                    "fail",
                    _(
                        "{url} is a loopback address while WHATSAPP_ENV=production: every message would go "
                        "to a local fake (or nowhere), not to the provider"
                    ).format(url=url),
                    _(
                        "remove {variable} from the production environment (the default is the real API)"
                    ).format(variable=variable),
                )
            )
        elif _is_loopback(url):
            checks.append(
                Check(variable, "ok", _("{url}: a local fake provider (development)").format(url=url))
            )
        else:
            checks.append(
                Check(variable, "warn", _("{url} instead of {default}").format(url=url, default=default))
            )
    return checks


def _webhook_url_check(s: Settings) -> Check:
    url = s.whatsapp_webhook_url
    if not url:
        return Check(
            "WHATSAPP_WEBHOOK_URL",
            "warn",
            _("not set: Twilio signatures are checked against the URL the app sees"),
            _("set it to the public URL configured at Meta and Twilio (needed behind proxies/tunnels)"),
        )
    parts = urlsplit(url)
    if parts.scheme != "https":
        return Check(
            "WHATSAPP_WEBHOOK_URL",
            "fail",
            _("{url} is not HTTPS: Meta only calls HTTPS webhooks with a valid certificate").format(url=url),
            _("expose the app over HTTPS (a tunnel such as ngrok or cloudflared while developing)"),
        )
    return Check("WHATSAPP_WEBHOOK_URL", "ok", url)


def unreachable(title: str, url: str, exc: Exception, credentials: str) -> Check:
    """A request that failed without an answer: a value that cannot be sent (a credential in a
    header) is not the network's fault, so say which it is."""
    if isinstance(exc, (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL, UnicodeError)):
        return Check(
            title,
            "fail",
            _("the request could not be built from {variables} ({error})").format(
                variables=credentials, error=type(exc).__name__
            ),
            _("copy {variables} again: no spaces, quotes or line breaks").format(variables=credentials),
        )
    return Check(
        title,
        "fail",
        _("cannot reach {url}: {error}").format(url=url, error=type(exc).__name__),
        _("check the network (and a proxy, if you use one)"),
    )


# --- online: our own webhook -----------------------------------------------------------------------
def webhook_check(s: Settings, client: httpx.Client) -> Check:
    """Ask the running webhook for Meta's challenge, as the App Dashboard does."""
    from .providers.meta.doctor import webhook_check as meta_webhook_check

    return meta_webhook_check(s, client)


def render(checks: list[Check]) -> str:
    """Human-readable report."""
    marks = {"ok": "✔", "warn": "!", "fail": "✖"}
    lines = []
    for c in checks:
        lines.append(f"{marks[c.status]} {c.title}: {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"    → {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(_("{failed} problem(s), {warned} warning(s)").format(failed=failed, warned=warned))
    return "\n".join(lines)
