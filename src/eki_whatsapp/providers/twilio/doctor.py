"""Doctor checks for Twilio: the sender number, and (online) the account and its credentials."""

from __future__ import annotations

import httpx

from ...doctor import Check, unreachable
from ...i18n import gettext as _
from ...settings import Settings

__all__ = ["SANDBOX_NUMBER", "api_url", "offline_checks", "online_checks"]

#: Twilio's shared WhatsApp sandbox sender.
SANDBOX_NUMBER = "+14155238886"


def api_url(s: Settings) -> tuple[str, str, str]:
    """The REST API URL setting: its variable, its value and the real API's URL."""
    return "TWILIO_API_BASE_URL", s.twilio_api_base_url, "https://api.twilio.com"


def offline_checks(s: Settings) -> list[Check]:
    """A warning when the sender is the shared sandbox number."""
    if s.twilio_whatsapp_number != SANDBOX_NUMBER:
        return []
    return [
        Check(
            "TWILIO_WHATSAPP_NUMBER",
            "warn",
            _("this is Twilio's shared sandbox number: users must first send 'join <code>' to it"),
            _("request your own WhatsApp sender in the Twilio Console for production"),
        )
    ]


def online_checks(s: Settings, client: httpx.Client) -> list[Check]:
    """The account exists, is active and accepts the credentials (read-only)."""
    assert s.twilio_auth_token is not None and s.twilio_account_sid is not None
    title = _("Twilio account")
    url = f"{s.twilio_api_base_url}/2010-04-01/Accounts/{s.twilio_account_sid}.json"
    try:
        response = client.get(url, auth=(s.twilio_account_sid, s.twilio_auth_token.get_secret_value()))
    except (httpx.HTTPError, UnicodeError) as exc:  # a header value that cannot be encoded
        return [unreachable(title, s.twilio_api_base_url, exc, "TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN")]
    if response.status_code == 401:
        return [
            Check(
                title,
                "fail",
                _("TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN were refused (error 20003)"),
                _(
                    "copy both from the Twilio Console home page (Account Info); after rotating the token "
                    "use the new primary"
                ),
            )
        ]
    if response.status_code == 404:
        return [
            Check(
                title, "fail", _("TWILIO_ACCOUNT_SID does not exist (error 20404)"), _("it starts with AC…")
            )
        ]
    if response.status_code != 200:
        return [
            Check(
                title,
                "fail",
                _("HTTP {status}: {body}").format(status=response.status_code, body=response.text[:200]),
                _("retry later"),
            )
        ]
    data = response.json()
    status = data.get("status")
    if status not in (None, "active"):
        return [
            Check(
                title,
                "fail",
                _("the account is {status}").format(status=status),
                _("reactivate it in the Twilio Console"),
            )
        ]
    return [
        Check(title, "ok", _("{name} is active").format(name=data.get("friendly_name", s.twilio_account_sid)))
    ]
