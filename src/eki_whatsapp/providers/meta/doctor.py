"""Doctor checks for Meta: the settings, and (online) the phone number, the token and the
webhook subscription through the Graph API; the running webhook's answer to the handshake.

Every finding says what is wrong and how to fix it (expired 24-hour tokens, unverified numbers,
missing subscriptions, a verify token that differs from the running app's).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import httpx

from ...doctor import Check
from ...settings import Settings

__all__ = ["GRAPH_SUNSET", "offline_checks", "online_checks", "webhook_check"]

#: Graph API versions and their sunset dates (docs/wire.md §4.1).
GRAPH_SUNSET = {"v22.0": "2027-05-20", "v23.0": "2027-10-08", "v24.0": "2028-02-18", "v25.0": "2028-07-29"}


def offline_checks(s: Settings) -> list[Check]:
    """The verify token, the app secret and the Graph API version."""
    checks: list[Check] = []
    if s.meta_verify_token is None:
        checks.append(
            Check(
                "META_VERIFY_TOKEN",
                "fail",
                "not set: Meta's webhook verification will be refused",
                "choose any string, put it in .env and type the same string in App Dashboard > "
                "WhatsApp > Configuration > Verify token",
            )
        )
    else:
        checks.append(Check("META_VERIFY_TOKEN", "ok", "set"))
    if s.meta_app_secret is None:
        checks.append(
            Check(
                "META_APP_SECRET",
                "fail" if s.whatsapp_env == "production" else "warn",
                "not set: X-Hub-Signature-256 is not checked, anyone can post fake messages",
                "copy App Dashboard > App settings > Basic > App secret into META_APP_SECRET",
            )
        )
    else:
        checks.append(Check("META_APP_SECRET", "ok", "signatures are checked"))
    sunset = GRAPH_SUNSET.get(s.meta_graph_version)
    detail = f"{s.meta_graph_version}" + (f" (sunset {sunset})" if sunset else "")
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
                "META_WHATSAPP_TOKEN has expired (the token from the API Setup page lasts 24 hours)",
                "create a permanent System User token: Business Settings > Users > System users > "
                "Generate token with whatsapp_business_messaging and whatsapp_business_management",
            )
        return Check(
            title,
            "fail",
            f"META_WHATSAPP_TOKEN was refused (error {code}): {message}",
            "copy the token again; use a System User token for anything but a quick test",
        )
    if code in (100, 803) or response.status_code == 404:
        return Check(
            title,
            "fail",
            f"Meta does not know this id or the token cannot see it (error {code}): {message}",
            "check META_PHONE_NUMBER_ID / META_BUSINESS_ACCOUNT_ID in WhatsApp > API Setup, and that the "
            "token's System User has the WhatsApp account assigned",
        )
    if code in (10, 200) or response.status_code == 403:
        return Check(
            title,
            "fail",
            f"permission missing (error {code}): {message}",
            "give the token whatsapp_business_messaging and whatsapp_business_management permissions",
        )
    return Check(title, "fail", f"HTTP {response.status_code} (error {code}): {message}", "retry later")


def online_checks(s: Settings, client: httpx.Client) -> list[Check]:
    """The phone number and the webhook subscription, read with the token (read-only)."""
    assert s.meta_whatsapp_token is not None
    headers = {"Authorization": f"Bearer {s.meta_whatsapp_token.get_secret_value()}"}
    checks: list[Check] = []
    fields = (
        "display_phone_number,verified_name,code_verification_status,quality_rating,platform_type,name_status"
    )
    title = "Meta phone number"
    try:
        response = client.get(
            _graph(s, str(s.meta_phone_number_id)), params={"fields": fields}, headers=headers
        )
    except httpx.HTTPError as exc:
        return [
            Check(
                title,
                "fail",
                f"cannot reach {s.meta_graph_base_url}: {type(exc).__name__}",
                "check the network",
            )
        ]
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
                    f"{number} ({name}) is not verified (code_verification_status={status})",
                    "verify the number in WhatsApp Manager > Phone numbers (SMS or voice code)",
                )
            )
        elif data.get("platform_type") not in (None, "CLOUD_API"):
            checks.append(
                Check(
                    title,
                    "fail",
                    f"{number} is not registered with the Cloud API "
                    f"(platform_type={data.get('platform_type')})",
                    f"register it: POST /{s.meta_graph_version}/{s.meta_phone_number_id}/register "
                    "with a 6-digit pin",
                )
            )
        else:
            quality = data.get("quality_rating") or "-"
            checks.append(Check(title, "ok", f"{number} ({name}), quality {quality}"))
    if s.meta_business_account_id:
        checks.append(_subscription_check(s, client, headers))
    else:
        checks.append(
            Check(
                "Meta webhook subscription",
                "warn",
                "META_BUSINESS_ACCOUNT_ID is not set, so the subscription cannot be checked",
                "set META_BUSINESS_ACCOUNT_ID (WhatsApp > API Setup) to check it",
            )
        )
    return checks


def _subscription_check(s: Settings, client: httpx.Client, headers: dict[str, str]) -> Check:
    title = "Meta webhook subscription"
    fix = (
        f"subscribe your app to the WhatsApp account: POST /{s.meta_graph_version}/"
        f"{s.meta_business_account_id}/subscribed_apps with the token, and tick the 'messages' field in "
        "App Dashboard > WhatsApp > Configuration > Webhook fields"
    )
    try:
        response = client.get(_graph(s, f"{s.meta_business_account_id}/subscribed_apps"), headers=headers)
    except httpx.HTTPError as exc:
        return Check(title, "fail", f"cannot reach Meta: {type(exc).__name__}", "check the network")
    if response.status_code != 200:
        return _explain_meta(title, response, s)
    apps = [a.get("whatsapp_business_api_data", {}).get("name", "?") for a in response.json().get("data", [])]
    if not apps:
        return Check(title, "fail", "no app is subscribed to this WhatsApp account's webhooks", fix)
    return Check(
        title,
        "ok",
        f"subscribed apps: {', '.join(apps)} (make sure the 'messages' field is ticked in the App Dashboard)",
    )


def webhook_check(s: Settings, client: httpx.Client) -> Check:
    """Ask the running webhook for Meta's challenge, as the App Dashboard does."""
    title = "webhook verification"
    url = s.whatsapp_webhook_url
    if not url:
        return Check(title, "warn", "WHATSAPP_WEBHOOK_URL is not set; nothing to call", "set it to check")
    if s.meta_verify_token is None:
        return Check(title, "warn", "META_VERIFY_TOKEN is not set; nothing to check", "set it")
    challenge = secrets.token_hex(8)
    query = urlencode(
        {
            "hub.mode": "subscribe",
            "hub.verify_token": s.meta_verify_token.get_secret_value(),
            "hub.challenge": challenge,
        }
    )
    try:
        response = client.get(f"{url}{'&' if '?' in url else '?'}{query}")
    except httpx.HTTPError as exc:
        return Check(
            title,
            "fail",
            f"cannot reach {url}: {type(exc).__name__}",
            "start the app (eki-whatsapp serve, or your Django/Flask server) and the tunnel; "
            "Meta needs HTTPS",
        )
    if response.status_code == 200 and response.text == challenge:
        return Check(title, "ok", f"{url} answers Meta's challenge with this verify token")
    if response.status_code == 403:
        return Check(
            title,
            "fail",
            f"{url} refused the verify token (403): the running app has another META_VERIFY_TOKEN",
            "use the same META_VERIFY_TOKEN in the app's environment, in this .env and in the App Dashboard",
        )
    return Check(
        title,
        "fail",
        f"{url} answered {response.status_code} instead of echoing the challenge",
        "make sure this URL is routed to the bot's webhook (GET and POST)",
    )
