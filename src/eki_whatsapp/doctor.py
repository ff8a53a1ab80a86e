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
    return checks


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
    return checks


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
