"""Twilio webhook parameters → events (docs/wire.md §7).

One form post is one inbound message (``SmsStatus=received``) or one status callback
(``MessageStatus``). All values are strings; unknown parameters are kept in ``raw``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ...addresses import split as split_address
from ...events import (
    MESSAGE_TYPES,
    ErrorInfo,
    Event,
    InboundLocation,
    InboundMessage,
    MediaRef,
    Referral,
    StatusUpdate,
)
from ..base import PayloadError as BasePayloadError

# Kinds Twilio reports (MessageType); Meta-only kinds (system, edit, ...) never come from Twilio.
_KNOWN = MESSAGE_TYPES - {"system", "request_welcome", "edit", "revoke", "unsupported"}


class PayloadError(BasePayloadError):
    """The parameters are not a Twilio message webhook or status callback."""


#: The parameters that name the message; any of them marks a Twilio request.
SID_PARAMS = ("MessageSid", "SmsMessageSid", "SmsSid")


def is_twilio(params: Mapping[str, Any]) -> bool:
    """Whether parameters (form, query or JSON keys) name a Twilio message."""
    return any(k in params for k in SID_PARAMS)


#: The query parameter of a ``StatusCallback`` URL that carries the router's correlation key
#: (docs/wire.md §7.3): Twilio posts statuses to the URL as given, query included.
CORRELATION_PARAM = "eki_ref"


def parse_params(params: Mapping[str, str], *, received_at: datetime | None = None) -> list[Event]:
    """The event of one Twilio request (a list, like the Meta parser's)."""
    now = received_at or datetime.now(timezone.utc)
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
    if not sid:
        raise PayloadError("Twilio request without MessageSid")
    if "MessageStatus" in params or "EventType" in params:
        return [_status(sid, params, now)]
    return [_message(sid, params, now)]


def _message(sid: str, p: Mapping[str, str], now: datetime) -> InboundMessage:
    phone, from_user = split_address(p.get("From"))
    wa_id = (p.get("WaId") or "").strip() or None
    phone = wa_id or phone
    external, external_user = split_address(p.get("ExternalUserId") or p.get("ExternalUserIdentifier"))
    user_id = from_user or external_user or (external if not phone else None)
    business, _ = split_address(p.get("To"))
    body = p.get("Body") or None
    media = _media(p, body)
    button_text = p.get("ButtonText") or None
    payload = p.get("ButtonPayload") or p.get("ListId") or None
    location = None
    if p.get("Latitude") and p.get("Longitude"):
        try:
            latitude, longitude = float(p["Latitude"]), float(p["Longitude"])
            if not (math.isfinite(latitude) and math.isfinite(longitude)):
                raise ValueError("a coordinate is not a finite number")  # "1e400" reads as inf
            location = InboundLocation(
                latitude=latitude,
                longitude=longitude,
                name=p.get("Label") or None,
                address=p.get("Address") or None,
            )
        except ValueError:
            location = None
    kind = (p.get("MessageType") or "").strip().lower()
    if not kind:
        if location is not None:
            kind = "location"
        elif media:
            kind = _kind_from_mime(media[0].mime_type)
        elif payload or button_text:
            kind = "button"
        else:
            kind = "text"
    unsupported_type = None
    if kind not in _KNOWN:
        unsupported_type, kind = kind, "unsupported"
    text = body
    if kind in ("button", "interactive"):
        text = button_text or p.get("ListTitle") or body
    profile = p.get("ProfileName") or _channel_profile(p.get("ChannelMetadata"))
    referral = None
    if any(
        p.get(k)
        for k in (
            "ReferralSourceId",
            "ReferralCtwaClid",
            "ReferralBody",
            "ReferralSourceUrl",
            "ReferralMediaUrl",
        )
    ):
        media_type = p.get("ReferralMediaContentType") or ""
        media_url = p.get("ReferralMediaUrl") or None
        referral = Referral(
            image_url=media_url if media_url and not media_type.startswith("video/") else None,
            video_url=media_url if media_url and media_type.startswith("video/") else None,
            media_id=p.get("ReferralMediaId") or None,
            source_url=p.get("ReferralSourceUrl") or None,
            source_id=p.get("ReferralSourceId") or None,
            source_type=p.get("ReferralSourceType") or None,
            headline=p.get("ReferralHeadline") or None,
            body=p.get("ReferralBody") or None,
            media_type=p.get("ReferralMediaContentType") or None,
            ctwa_clid=p.get("ReferralCtwaClid") or None,
        )
    return InboundMessage(
        provider="twilio",
        id=sid,
        sender=phone or user_id or "unknown",
        recipient=business or p.get("To") or "unknown",
        type=kind,
        timestamp=now,
        raw=dict(p),
        text=text,
        profile_name=profile,
        reply_to=p.get("OriginalRepliedMessageSid") or None,
        media=media,
        sender_phone=phone,
        sender_user_id=user_id,
        business_number=business,
        payload=payload,
        interactive_type=_interactive_type(p) if kind == "interactive" else None,
        location=location,
        referral=referral,
        forwarded=_true(p.get("Forwarded")) or _true(p.get("FrequentlyForwarded")),
        frequently_forwarded=_true(p.get("FrequentlyForwarded")),
        unsupported_type=unsupported_type,
    )


def _status(sid: str, p: Mapping[str, str], now: datetime) -> StatusUpdate:
    status = (p.get("MessageStatus") or p.get("SmsStatus") or p.get("EventType") or "unknown").lower()
    recipient, recipient_user = split_address(p.get("To"))
    if recipient is None and recipient_user is None:
        recipient, recipient_user = split_address(p.get("ChannelToAddress"))
    business, _ = split_address(p.get("From"))
    errors: tuple[ErrorInfo, ...] = ()
    code_text = (p.get("ErrorCode") or "").strip()
    if code_text:
        try:
            code: int | None = int(code_text)
        except ValueError:
            code = None
        message = p.get("ErrorMessage") or p.get("ChannelStatusMessage") or f"Twilio error {code_text}"
        errors = (
            ErrorInfo(
                code=code,
                message=message,
                details=p.get("ChannelStatusMessage") or None,
                href=f"https://www.twilio.com/docs/errors/{code_text}" if code is not None else None,
            ),
        )
    return StatusUpdate(
        provider="twilio",
        message_id=sid,
        status=status,
        timestamp=now,
        raw=dict(p),
        recipient=recipient or recipient_user,
        recipient_user_id=recipient_user,
        business_number=business,
        errors=errors,
        correlation=p.get(CORRELATION_PARAM) or None,
    )


def media_of(params: Mapping[str, Any]) -> tuple[MediaRef, ...]:
    """The media of one logged message's parameters, read again; ``()`` when it has none."""
    return _media({str(k): str(v) for k, v in params.items()}, None)


#: The most media one Twilio message carries (10 on MMS; WhatsApp sends one): a larger
#: ``NumMedia`` is not believed, so a forged count cannot make the parser loop without end.
MAX_MEDIA = 10


def _media(p: Mapping[str, str], caption: str | None) -> tuple[MediaRef, ...]:
    try:
        count = min(int(p.get("NumMedia") or 0), MAX_MEDIA)
    except ValueError:
        count = 0
    # MediaUrl{N} beyond NumMedia are read too: as many as the form has (bounded by its size)
    count = max(count, sum(1 for k in p if k.startswith("MediaUrl")))
    refs = []
    for n in range(count):
        url = p.get(f"MediaUrl{n}")
        if not url:
            continue
        refs.append(
            MediaRef(
                provider="twilio",
                url=url,
                id=url.rstrip("/").rsplit("/", 1)[-1] or None,
                mime_type=p.get(f"MediaContentType{n}") or None,
                caption=caption,
            )
        )
    return tuple(refs)


def _interactive_type(p: Mapping[str, str]) -> str:
    return "list_reply" if p.get("ListId") else "button_reply"


def _kind_from_mime(mime: str | None) -> str:
    mime = (mime or "").lower()
    if mime == "image/webp":
        return "sticker"
    for prefix in ("image", "video", "audio"):
        if mime.startswith(prefix + "/"):
            return prefix
    return "document"


def _channel_profile(value: str | None) -> str | None:
    if not value:
        return None
    try:
        data = json.loads(value)
        context = data.get("data", {}).get("context", {})
        name = context.get("ProfileName")
        return str(name) if name else None
    except (ValueError, AttributeError, TypeError, RecursionError):  # 100,000 '[' is not a profile
        return None


def _true(value: Any) -> bool:
    return str(value).strip().lower() == "true"
