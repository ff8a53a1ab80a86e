"""Doctor checks for Meta: the settings, and (online) the phone number, the token and the
webhook subscription through the Graph API; the running webhook's answer to the handshake.

Every finding says what is wrong and how to fix it (expired 24-hour tokens, unverified numbers,
missing subscriptions, a verify token that differs from the running app's).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import httpx

from ...doctor import Check, unreachable
from ...i18n import gettext as _
from ...settings import Settings

__all__ = ["GRAPH_SUNSET", "api_url", "offline_checks", "online_checks", "webhook_check"]

#: Graph API versions and their sunset dates (docs/wire.md §4.1).
GRAPH_SUNSET = {"v22.0": "2027-05-20", "v23.0": "2027-10-08", "v24.0": "2028-02-18", "v25.0": "2028-07-29"}


def api_url(s: Settings) -> tuple[str, str, str]:
    """The Graph API URL setting: its variable, its value and the real API's URL."""
    return "META_GRAPH_BASE_URL", s.meta_graph_base_url, "https://graph.facebook.com"


def offline_checks(s: Settings) -> list[Check]:
    """The verify token, the app secret and the Graph API version."""
    checks: list[Check] = []
    if s.meta_verify_token is None:
        checks.append(
            Check(
                "META_VERIFY_TOKEN",
                "fail",
                _("not set: Meta's webhook verification will be refused"),
                _(
                    "choose any string, put it in .env and type the same string in App Dashboard > "
                    "WhatsApp > Configuration > Verify token"
                ),
            )
        )
    else:
        checks.append(Check("META_VERIFY_TOKEN", "ok", _("set")))
    if s.meta_app_secret is None:
        checks.append(
            Check(
                "META_APP_SECRET",
                "fail" if s.whatsapp_env == "production" else "warn",
                _("not set: X-Hub-Signature-256 is not checked, anyone can post fake messages"),
                _("copy App Dashboard > App settings > Basic > App secret into META_APP_SECRET"),
            )
        )
    else:
        checks.append(Check("META_APP_SECRET", "ok", _("signatures are checked")))
    sunset = GRAPH_SUNSET.get(s.meta_graph_version)
    detail = s.meta_graph_version + (" " + _("(sunset {date})").format(date=sunset) if sunset else "")
    checks.append(Check("META_GRAPH_VERSION", "ok", detail))
    return checks


def _graph(s: Settings, path: str) -> str:
    return f"{s.meta_graph_base_url}/{s.meta_graph_version}/{path.lstrip('/')}"


def _meta_error(response: httpx.Response) -> tuple[int | None, int | None, str]:
    try:
        err = response.json().get("error", {})
    except ValueError:
        return None, None, response.text[:200]
    return err.get("code"), err.get("error_subcode"), str(err.get("message", ""))


def _explain_meta(title: str, response: httpx.Response, s: Settings) -> Check:
    code, subcode, message = _meta_error(response)
    if code == 190 or response.status_code == 401:
        if subcode == 463 or "expired" in message.lower():
            return Check(
                title,
                "fail",
                _("META_WHATSAPP_TOKEN has expired (the token from the API Setup page lasts 24 hours)"),
                _(
                    "create a permanent System User token: Business Settings > Users > System users > "
                    "Generate token with whatsapp_business_messaging and whatsapp_business_management"
                ),
            )
        return Check(
            title,
            "fail",
            _("META_WHATSAPP_TOKEN was refused (error {code}): {message}").format(code=code, message=message),
            _("copy the token again; use a System User token for anything but a quick test"),
        )
    if code in (100, 803) or response.status_code == 404:
        return Check(
            title,
            "fail",
            _("Meta does not know this id or the token cannot see it (error {code}): {message}").format(
                code=code, message=message
            ),
            _(
                "check META_PHONE_NUMBER_ID / META_BUSINESS_ACCOUNT_ID in WhatsApp > API Setup, and that the "
                "token's System User has the WhatsApp account assigned"
            ),
        )
    if code in (10, 200) or response.status_code == 403:
        return Check(
            title,
            "fail",
            _("permission missing (error {code}): {message}").format(code=code, message=message),
            _("give the token whatsapp_business_messaging and whatsapp_business_management permissions"),
        )
    return Check(
        title,
        "fail",
        _("HTTP {status} (error {code}): {message}").format(
            status=response.status_code, code=code, message=message
        ),
        _("retry later"),
    )


def online_checks(s: Settings, client: httpx.Client) -> list[Check]:
    """The phone number and the webhook subscription, read with the token (read-only)."""
    assert s.meta_whatsapp_token is not None
    headers = {"Authorization": f"Bearer {s.meta_whatsapp_token.get_secret_value()}"}
    checks: list[Check] = []
    fields = (
        "display_phone_number,verified_name,code_verification_status,quality_rating,platform_type,name_status"
    )
    title = _("Meta phone number")
    try:
        response = client.get(
            _graph(s, str(s.meta_phone_number_id)), params={"fields": fields}, headers=headers
        )
    except (httpx.HTTPError, UnicodeError) as exc:  # a header value that cannot be encoded
        return [unreachable(title, s.meta_graph_base_url, exc, "META_WHATSAPP_TOKEN / META_PHONE_NUMBER_ID")]
    if response.status_code != 200:
        checks.append(_explain_meta(title, response, s))
    else:
        data: dict[str, Any] = response.json()
        name = data.get("verified_name") or "?"
        number = data.get("display_phone_number") or "?"
        status = data.get("code_verification_status")
        if status not in (None, "VERIFIED"):
            checks.append(
                Check(
                    title,
                    "fail",
                    _("{number} ({name}) is not verified (code_verification_status={status})").format(
                        number=number, name=name, status=status
                    ),
                    _("verify the number in WhatsApp Manager > Phone numbers (SMS or voice code)"),
                )
            )
        elif data.get("platform_type") not in (None, "CLOUD_API"):
            checks.append(
                Check(
                    title,
                    "fail",
                    _("{number} is not registered with the Cloud API (platform_type={platform})").format(
                        number=number, platform=data.get("platform_type")
                    ),
                    _("register it: POST /{version}/{id}/register with a 6-digit pin").format(
                        version=s.meta_graph_version, id=s.meta_phone_number_id
                    ),
                )
            )
        else:
            quality = data.get("quality_rating") or "-"
            checks.append(
                Check(
                    title,
                    "ok",
                    _("{number} ({name}), quality {quality}").format(
                        number=number, name=name, quality=quality
                    ),
                )
            )
    if s.meta_business_account_id:
        checks.append(_subscription_check(s, client, headers))
    else:
        checks.append(
            Check(
                _("Meta webhook subscription"),
                "warn",
                _("META_BUSINESS_ACCOUNT_ID is not set, so the subscription cannot be checked"),
                _("set META_BUSINESS_ACCOUNT_ID (WhatsApp > API Setup) to check it"),
            )
        )
    return checks


def _subscription_check(s: Settings, client: httpx.Client, headers: dict[str, str]) -> Check:
    title = _("Meta webhook subscription")
    fix = _(
        "subscribe your app to the WhatsApp account: POST /{version}/{waba}/subscribed_apps with the token, "
        "and tick the 'messages' field in App Dashboard > WhatsApp > Configuration > Webhook fields"
    ).format(version=s.meta_graph_version, waba=s.meta_business_account_id)
    try:
        response = client.get(_graph(s, f"{s.meta_business_account_id}/subscribed_apps"), headers=headers)
    except (httpx.HTTPError, UnicodeError) as exc:  # a header value that cannot be encoded
        return unreachable(
            title, s.meta_graph_base_url, exc, "META_WHATSAPP_TOKEN / META_BUSINESS_ACCOUNT_ID"
        )
    if response.status_code != 200:
        return _explain_meta(title, response, s)
    apps = [a.get("whatsapp_business_api_data", {}).get("name", "?") for a in response.json().get("data", [])]
    if not apps:
        return Check(title, "fail", _("no app is subscribed to this WhatsApp account's webhooks"), fix)
    return Check(
        title,
        "ok",
        _("subscribed apps: {apps} (make sure the 'messages' field is ticked in the App Dashboard)").format(
            apps=", ".join(apps)
        ),
    )


class _Hide(logging.Filter):
    """Writes ``***`` for a secret in the records of a logger (httpx logs every URL at INFO)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.forms = {secret, quote_plus(secret), quote(secret, safe="")} - {""}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(form in message for form in self.forms):
            for form in sorted(self.forms, key=len, reverse=True):
                message = message.replace(form, "***")
            record.msg, record.args = message, None
        return True


@contextmanager
def _token_hidden_in_logs(token: str) -> Iterator[None]:
    """The handshake carries the verify token in its URL, as Meta's does; httpx's request log
    line (INFO) must not show it."""
    hide = _Hide(token)
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    for each in loggers:
        each.addFilter(hide)
    try:
        yield
    finally:
        for each in loggers:
            each.removeFilter(hide)


def webhook_check(s: Settings, client: httpx.Client) -> Check:
    """Ask the running webhook for Meta's challenge, as the App Dashboard does."""
    title = _("webhook verification")
    url = s.whatsapp_webhook_url
    if not url:
        return Check(
            title, "warn", _("WHATSAPP_WEBHOOK_URL is not set; nothing to call"), _("set it to check")
        )
    if s.meta_verify_token is None:
        return Check(title, "warn", _("META_VERIFY_TOKEN is not set; nothing to check"), _("set it"))
    challenge = secrets.token_hex(8)
    query = urlencode(
        {
            "hub.mode": "subscribe",
            "hub.verify_token": s.meta_verify_token.get_secret_value(),
            "hub.challenge": challenge,
        }
    )
    try:
        with _token_hidden_in_logs(s.meta_verify_token.get_secret_value()):
            response = client.get(f"{url}{'&' if '?' in url else '?'}{query}")
    except (httpx.HTTPError, UnicodeError) as exc:  # a header value that cannot be encoded
        return Check(
            title,
            "fail",
            _("cannot reach {url}: {error}").format(url=url, error=type(exc).__name__),
            _(
                "start the app (eki-whatsapp serve, or your Django/Flask server) and the tunnel; "
                "Meta needs HTTPS"
            ),
        )
    if response.status_code == 200 and response.text == challenge:
        return Check(title, "ok", _("{url} answers Meta's challenge with this verify token").format(url=url))
    if response.status_code == 403:
        return Check(
            title,
            "fail",
            _("{url} refused the verify token (403): the running app has another META_VERIFY_TOKEN").format(
                url=url
            ),
            _(
                "use the same META_VERIFY_TOKEN in the app's environment, in this .env and in the "
                "App Dashboard"
            ),
        )
    return Check(
        title,
        "fail",
        _("{url} answered {status} instead of echoing the challenge").format(
            url=url, status=response.status_code
        ),
        _("make sure this URL is routed to the bot's webhook (GET and POST)"),
    )
