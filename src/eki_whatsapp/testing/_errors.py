"""Real error shapes of both providers (docs/wire.md §5, §9), shared by the fakes and the builders."""

from __future__ import annotations

import secrets
from typing import Any

META_ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

#: Meta code → (HTTP status, title, details). Titles and details follow Meta's error-code page.
META_ERRORS: dict[int, tuple[int, str, str]] = {
    0: (401, "AuthException", "We were unable to authenticate the app user."),
    1: (400, "API Unknown", "Invalid request or possible server error."),
    2: (503, "API Service", "Temporary due to downtime or due to being overloaded."),
    3: (403, "API Method", "Capability or permissions issue."),
    4: (400, "API Too Many Calls", "The app has reached its API call rate limit."),
    10: (403, "Permission Denied", "Permission is either not granted or has been removed."),
    100: (400, "Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    104: (400, "An access token is required to request this resource.", "No access token was sent."),
    190: (401, "Invalid OAuth access token - Cannot parse access token", "The access token is invalid."),
    368: (403, "Temporarily blocked for policies violations", "The WhatsApp Business Account is restricted."),
    80007: (400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached."),
    130472: (
        400,
        "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment.",
    ),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131005: (403, "Access denied", "Permission is either not granted or has been removed."),
    131008: (400, "Required parameter is missing", "The request is missing a required parameter."),
    131009: (400, "Parameter value is not valid", "One or more parameter values are invalid."),
    131016: (503, "Service unavailable", "A service is temporarily unavailable."),
    131021: (400, "Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: (
        400,
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient "
        "phone number is not a WhatsApp phone number; the recipient has not accepted the new Terms of "
        "Service; the recipient is using an old WhatsApp version.",
    ),
    131031: (403, "Account has been locked", "The WhatsApp Business Account is locked."),
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed "
        "since the customer last replied to this number.",
    ),
    131048: (
        400,
        "Spam rate limit hit",
        "Message failed to send because there are restrictions on how "
        "many messages can be sent from this phone number.",
    ),
    131049: (
        400,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131050: (
        400,
        "User has stopped marketing messages",
        "Unable to deliver the marketing message because the user has stopped marketing messages.",
    ),
    131051: (400, "Unsupported message type", "Message type is not currently supported."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send "
        "because there were too many messages sent from this phone number to the same phone number "
        "in a short period of time.",
    ),
    131057: (500, "Account in maintenance mode", "Business Account is in maintenance mode."),
    132000: (
        400,
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values does not match the template.",
    ),
    132001: (
        404,
        "Template name does not exist in the translation",
        "The template does not exist in the specified language or has not been approved.",
    ),
    133004: (503, "Server temporarily unavailable", "The server is temporarily unavailable."),
    133010: (
        400,
        "Phone number not registered",
        "The phone number is not registered on the WhatsApp Business Platform.",
    ),
}

#: Twilio code → (HTTP status, message) as in the REST API's error JSON.
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21654: (400, "ContentSid Required"),
    21656: (400, "The ContentVariables Parameter is invalid."),
    21910: (400, "Invalid 'From' and 'To' pair. 'From' and 'To' should be of the same channel."),
    30500: (500, "Internal server error"),
    63003: (400, "Channel could not find To address"),
    63007: (400, "Twilio could not find a Channel with the specified From address"),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. If you are "
        "using WhatsApp, please use a Message Template.",
    ),
    63018: (429, "Rate limit exceeded for Channel"),
    63024: (400, "Invalid message recipient"),
    63038: (429, "Account exceeded the daily messages limit"),
}

_META_DEFAULT_BY_STATUS = {400: 100, 401: 190, 403: 10, 404: 100, 429: 130429, 500: 131000, 503: 131016}
_TWILIO_DEFAULT_BY_STATUS = {400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 30500, 503: 20503}


def meta_code_and_status(code: int | None, http_status: int | None) -> tuple[int, int]:
    """Fill in whichever of (code, HTTP status) is missing with Meta's usual pairing."""
    if code is None:
        code = _META_DEFAULT_BY_STATUS.get(http_status or 500, 131000)
    if http_status is None:
        http_status = META_ERRORS.get(code, (400, "", ""))[0]
    return code, http_status


def twilio_code_and_status(code: int | None, http_status: int | None) -> tuple[int, int]:
    """Fill in whichever of (code, HTTP status) is missing with Twilio's usual pairing."""
    if code is None:
        code = _TWILIO_DEFAULT_BY_STATUS.get(http_status or 500, 30500)
    if http_status is None:
        http_status = TWILIO_ERRORS.get(code, (400, ""))[0]
    return code, http_status


def meta_error_body(code: int, message: str | None = None, *, subcode: int | None = None) -> dict[str, Any]:
    """The synchronous Graph API error object: ``{"error": {...}}`` (docs/wire.md §5.1)."""
    _, title, details = META_ERRORS.get(code, (400, "Error", "Unknown error."))
    text = message or (title if code in (104, 190) else f"(#{code}) {title}")
    error: dict[str, Any] = {"message": text, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if code in (1, 2, 130429, 131000, 131016, 131057, 133004):
        error["is_transient"] = True
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": error}


def meta_webhook_error(code: int, *, title: str | None = None, details: str | None = None) -> dict[str, Any]:
    """The asynchronous error object of webhooks: ``{code, title, message, error_data, href}``."""
    _, known_title, known_details = META_ERRORS.get(code, (400, "Error", "Unknown error."))
    title = title or known_title
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details or known_details},
        "href": META_ERROR_HREF,
    }


def twilio_error_body(code: int, http_status: int, message: str | None = None) -> dict[str, Any]:
    """Twilio's REST error JSON (docs/wire.md §9)."""
    return {
        "code": code,
        "message": message or TWILIO_ERRORS.get(code, (http_status, "Error"))[1],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": http_status,
    }
