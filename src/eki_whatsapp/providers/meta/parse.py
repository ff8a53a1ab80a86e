"""Meta Cloud API webhook bodies → events (docs/wire.md §3).

Every entry, change, message and status of a body is read, not only the first. A message kind
the library does not know becomes ``type="unsupported"`` with its raw data; a malformed message
is kept the same way rather than dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ...addresses import normalize
from ...events import (
    MESSAGE_TYPES,
    CallPermissionReply,
    ChangeEvent,
    ErrorInfo,
    Event,
    FlowReply,
    InboundLocation,
    InboundMessage,
    InboundReaction,
    MediaRef,
    Pricing,
    Referral,
    ReferredProduct,
    StatusUpdate,
)
from ..base import PayloadError as BasePayloadError

logger = logging.getLogger("eki_whatsapp.webhook")

OBJECT = "whatsapp_business_account"
_MEDIA = ("image", "video", "audio", "document", "sticker")
_KNOWN = MESSAGE_TYPES - {"unsupported"}  # every kind the library reads from Meta

#: How a correlation key sent in ``biz_opaque_callback_data`` is told apart from a value of the
#: user's own (``Template.callback_data``).
CORRELATION_PREFIX = "eki:"


def correlation_of(callback_data: str | None) -> str | None:
    """The correlation key a status echoes in ``biz_opaque_callback_data`` (docs/wire.md §3.4)."""
    if callback_data is None or not callback_data.startswith(CORRELATION_PREFIX):
        return None
    return callback_data[len(CORRELATION_PREFIX) :] or None


class PayloadError(BasePayloadError):
    """The body is JSON but not shaped like a Meta notification."""


def parse_body(body: Mapping[str, Any], *, received_at: datetime | None = None) -> list[Event]:
    """All events of a decoded Meta webhook body, in order."""
    now = received_at or _Now()
    if body.get("object") != OBJECT:
        raise PayloadError(f"not a WhatsApp Business Account notification (object={body.get('object')!r})")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("Meta notification without an 'entry' list")
    events: list[Event] = []
    for entry in entries:
        if not isinstance(entry, dict):
            events.append(_change("invalid_entry", _dt(now), {"entry": entry}, None))
            continue
        account = _str(entry.get("id"))
        changes = entry.get("changes")
        if not isinstance(changes, list):
            events.append(_change("invalid_entry", _dt(now), dict(entry), account))
            continue
        for change in changes:
            if not isinstance(change, dict):
                events.append(_change("invalid_change", _dt(now), {"change": change}, account))
                continue
            field = _str(change.get("field")) or "unknown"
            value = change.get("value")
            if field == "messages" and isinstance(value, dict):
                events.extend(_parse_messages_value(value, account, now))
            else:
                raw = dict(value) if isinstance(value, dict) else {"value": value}
                events.append(_change(field, _ts(raw.get("timestamp"), now), raw, account))
    return events


def _parse_messages_value(value: Mapping[str, Any], account: str | None, now: datetime | _Now) -> list[Event]:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    phone_number_id = _str(metadata.get("phone_number_id"))
    display = _digits(metadata.get("display_phone_number"))
    events: list[Event] = []
    messages = _list(value.get("messages"))
    if messages:
        contacts = [c for c in _list(value.get("contacts")) if isinstance(c, dict)]
        for raw in messages:
            if not isinstance(raw, dict):
                raw = {"value": raw}
            try:
                events.append(_message(raw, contacts, phone_number_id, display, now))
            except Exception:  # one unreadable message must not cost the batch its others
                logger.warning("unreadable Meta message kept as unsupported", exc_info=True)
                events.append(_unreadable(raw, phone_number_id or display, now))
    for raw in _list(value.get("statuses")):
        if not isinstance(raw, dict) or not _str(raw.get("id")):
            events.append(_change("invalid_status", _dt(now), {"status": raw}, account))
            continue
        try:
            events.append(_status(raw, phone_number_id or display, now))
        except Exception:  # kept, raw, as the other notifications are
            logger.warning("unreadable Meta status kept as invalid_status", exc_info=True)
            events.append(_change("invalid_status", _dt(now), {"status": raw}, account))
    errors = _list(value.get("errors"))
    if errors:
        raw = {"errors": errors, "metadata": dict(metadata)}
        events.append(_change("errors", _dt(now), raw, account))
    return events


def _message(
    m: Mapping[str, Any],
    contacts: Sequence[Mapping[str, Any]],
    phone_number_id: str | None,
    display: str | None,
    now: datetime | _Now,
) -> InboundMessage:
    phone = _digits(m.get("from"))
    user_id = _str(m.get("from_user_id"))
    contact = _match_contact(contacts, phone, user_id)
    if contact is not None:
        phone = phone or _digits(contact.get("wa_id"))
        user_id = user_id or _str(contact.get("user_id"))
    profile = contact.get("profile") if contact is not None else None
    profile_name = _str(profile.get("name")) if isinstance(profile, dict) else None
    username = _str(profile.get("username")) if isinstance(profile, dict) else None
    message_id = _str(m.get("id")) or _synthetic_id(m)
    base: dict[str, Any] = {
        "provider": "meta",
        "id": message_id,
        "sender": phone or user_id or "unknown",
        "recipient": phone_number_id or display or "unknown",
        "timestamp": _ts(m.get("timestamp"), now),
        "raw": m,
        "profile_name": profile_name,
        "sender_phone": phone,
        "sender_user_id": user_id,
        "business_number": display,
    }
    if username is not None:
        base["username"] = username
    context = m.get("context")
    if isinstance(context, dict):
        base["reply_to"] = _str(context.get("id"))
        base["forwarded"] = bool(context.get("forwarded")) or bool(context.get("frequently_forwarded"))
        base["frequently_forwarded"] = bool(context.get("frequently_forwarded"))
        product = context.get("referred_product")
        if isinstance(product, dict):
            base["referred_product"] = ReferredProduct(
                catalog_id=_str(product.get("catalog_id")),
                product_id=_str(product.get("product_retailer_id")),
            )
    if "errors" in m:
        base["errors"] = _errors(m.get("errors"))
    referral = m.get("referral")
    if isinstance(referral, dict):
        base["referral"] = Referral(
            source_url=_str(referral.get("source_url")),
            source_id=_str(referral.get("source_id")),
            source_type=_str(referral.get("source_type")),
            headline=_str(referral.get("headline")),
            body=_str(referral.get("body")),
            media_type=_str(referral.get("media_type")),
            ctwa_clid=_str(referral.get("ctwa_clid")),
            image_url=_str(referral.get("image_url")),
            video_url=_str(referral.get("video_url")),
            thumbnail_url=_str(referral.get("thumbnail_url")),
            welcome_message=_str(_get(referral.get("welcome_message"), "text")),
        )
    kind = _str(m.get("type")) or "unsupported"
    try:
        return InboundMessage(type=kind if kind in _KNOWN else "unsupported", **base, **_content(kind, m))
    except _UNREADABLE:
        # Shape we cannot read: keep it, raw, rather than lose it.
        return InboundMessage(type="unsupported", unsupported_type=kind, **base)


#: What reading a malformed part raises (OverflowError: a number too large for a float;
#: RecursionError: JSON text nested too deeply inside a field).
_UNREADABLE = (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError)


def _unreadable(m: Mapping[str, Any], recipient: str | None, now: datetime | _Now) -> InboundMessage:
    """A message nothing else could be read from: ``unsupported``, with its raw data."""
    return InboundMessage(
        provider="meta",
        id=_str(m.get("id")) or _synthetic_id(m),
        sender=_digits(m.get("from")) or "unknown",
        recipient=recipient or "unknown",
        type="unsupported",
        unsupported_type=_str(m.get("type")),
        timestamp=_dt(now),
        raw=m,
    )


def reread(
    raw: Mapping[str, Any],
    *,
    status: bool,
    recipient: str | None = None,
    sender: str | None = None,
    profile_name: str | None = None,
    business_number: str | None = None,
) -> Event | None:
    """An event read again from its logged raw object (a message or a status, as ``raw`` keeps
    it), with what the log row kept of the envelope (metadata, contact): the event a handler
    got the first time, for handling again after a crash. ``None`` when it does not parse."""
    value: dict[str, Any] = {
        "metadata": {"phone_number_id": recipient, "display_phone_number": business_number}
    }
    if status:
        value["statuses"] = [dict(raw)]
    else:
        value["messages"] = [dict(raw)]
        if sender is not None:
            value["contacts"] = [{"wa_id": sender, "profile": {"name": profile_name}}]
    body = {"object": OBJECT, "entry": [{"changes": [{"field": "messages", "value": value}]}]}
    try:
        events = parse_body(body)
    except PayloadError:
        return None
    return events[0] if events else None


def media_of(kind: str, message: Mapping[str, Any]) -> tuple[MediaRef, ...]:
    """The media of one raw message object (as logged), read again; ``()`` when it has none."""
    try:
        media = _content(kind, message).get("media", ())
    except (TypeError, ValueError, AttributeError, KeyError):
        return ()
    return tuple(media)


def _content(kind: str, m: Mapping[str, Any]) -> dict[str, Any]:
    """Fields specific to a message kind."""
    obj = m.get(kind)
    if kind == "text":
        return {"text": _str(_get(obj, "body"))}
    if kind in _MEDIA:
        if not isinstance(obj, dict):
            raise ValueError(f"{kind} object missing")
        ref = MediaRef(
            provider="meta",
            id=_str(obj.get("id")),
            url=_str(obj.get("url")),
            mime_type=_str(obj.get("mime_type")),
            sha256=_str(obj.get("sha256")),
            caption=_str(obj.get("caption")),
            filename=_str(obj.get("filename")),
            voice=bool(obj.get("voice", False)),
            animated=bool(obj.get("animated", False)),
        )
        return {"media": (ref,), "text": ref.caption}
    if kind == "location":
        if not isinstance(obj, dict):
            raise ValueError("location object missing")
        loc = InboundLocation(
            latitude=_coordinate(obj["latitude"]),
            longitude=_coordinate(obj["longitude"]),
            name=_str(obj.get("name")),
            address=_str(obj.get("address")),
            url=_str(obj.get("url")),
        )
        return {"location": loc}
    if kind == "contacts":
        return {"contacts": tuple(c for c in _list(obj) if isinstance(c, dict))}
    if kind == "interactive":
        if not isinstance(obj, dict):
            raise ValueError("interactive object missing")
        itype = _str(obj.get("type"))
        reply = obj.get(itype) if itype else None
        out: dict[str, Any] = {"interactive_type": itype}
        if isinstance(reply, dict):
            if itype in ("button_reply", "list_reply"):
                out["text"] = _str(reply.get("title"))
                out["payload"] = _str(reply.get("id"))
                if itype == "list_reply":
                    out["reply_description"] = _str(reply.get("description"))
            elif itype == "nfm_reply":
                out["text"] = _str(reply.get("body"))
                out["payload"] = _str(reply.get("response_json"))
                out["flow_reply"] = _flow_reply(reply)
            elif itype == "call_permission_reply":
                out["text"] = _str(reply.get("response"))
                out["call_permission"] = CallPermissionReply(
                    response=_str(reply.get("response")),
                    permanent=reply.get("is_permanent") is True,
                    expires_at=_ts_or_none(reply.get("expiration_timestamp")),
                    source=_str(reply.get("response_source")),
                )
        return out
    if kind == "button":
        return {"text": _str(_get(obj, "text")), "payload": _str(_get(obj, "payload"))}
    if kind == "reaction":
        return {
            "reaction": InboundReaction(
                message_id=_str(_get(obj, "message_id")), emoji=_str(_get(obj, "emoji")) or None
            )
        }
    if kind == "order":
        return {"order": dict(obj) if isinstance(obj, dict) else None, "text": _str(_get(obj, "text"))}
    if kind == "system":
        return {"system": dict(obj) if isinstance(obj, dict) else None, "text": _str(_get(obj, "body"))}
    if kind == "edit":
        inner = _get(obj, "message")
        original = _str(_get(obj, "original_message_id"))
        out = {"text": None, "payload": original, "original_id": original}
        if isinstance(inner, dict):
            inner_kind = _str(inner.get("type")) or ("text" if "text" in inner else None)
            if inner_kind in _MEDIA:  # an edited caption comes with the media it belongs to
                edited = _content(inner_kind, inner)
                out["text"], out["media"] = edited.get("text"), edited.get("media", ())
            else:
                out["text"] = _str(_get(_get(inner, "text"), "body"))
        return out
    if kind == "revoke":
        original = _str(_get(obj, "original_message_id"))
        return {"payload": original, "original_id": original}
    if kind in ("request_welcome",):
        return {}
    # "unsupported", older "unknown", or a kind newer than this library
    inner_type = _str(_get(obj, "type")) if kind in ("unsupported", "unknown") else kind
    return {"unsupported_type": inner_type or kind}


def _status(s: Mapping[str, Any], business: str | None, now: datetime | _Now) -> StatusUpdate:
    pricing = None
    p = s.get("pricing")
    conv = s.get("conversation")
    if isinstance(p, dict) or isinstance(conv, dict):
        p = p if isinstance(p, dict) else {}
        conv = conv if isinstance(conv, dict) else {}
        origin = conv.get("origin")
        billable = p.get("billable")
        # positional, in field order (category, pricing_model, billable, type, conversation id/origin)
        pricing = Pricing(
            _str(p.get("category")),
            _str(p.get("pricing_model")),
            billable if isinstance(billable, bool) else None,
            _str(p.get("type")),
            _str(conv.get("id")),
            _str(origin.get("type")) if isinstance(origin, dict) else None,
        )
    user_id = _str(s.get("recipient_user_id"))
    callback = _str(s.get("biz_opaque_callback_data"))
    if pricing is not None and isinstance(conv, dict) and conv.get("expiration_timestamp") is not None:
        pricing = Pricing(
            pricing.category,
            pricing.pricing_model,
            pricing.billable,
            pricing.type,
            pricing.conversation_id,
            pricing.conversation_origin,
            _ts_or_none(conv.get("expiration_timestamp")),
        )
    if "recipient_type" in s or "recipient_participant_id" in s:
        return StatusUpdate(
            provider="meta",
            message_id=str(s["id"]),
            status=(_str(s.get("status")) or "unknown").lower(),
            timestamp=_ts(s.get("timestamp"), now),
            raw=s,
            recipient=_digits(s.get("recipient_id"))
            if s.get("recipient_type") != "group"
            else _str(s.get("recipient_id")),
            recipient_user_id=user_id,
            business_number=business,
            errors=_errors(s["errors"]) if "errors" in s else (),
            pricing=pricing,
            callback_data=callback,
            correlation=correlation_of(callback),
            recipient_type=_str(s.get("recipient_type")),
            group_participant=_digits(s.get("recipient_participant_id")),
        )
    return StatusUpdate(
        provider="meta",
        message_id=str(s["id"]),
        status=(_str(s.get("status")) or "unknown").lower(),
        timestamp=_ts(s.get("timestamp"), now),
        raw=s,  # a fresh dict from json.loads: no copy needed
        recipient=_digits(s.get("recipient_id")) or user_id,
        recipient_user_id=user_id,
        business_number=business,
        errors=_errors(s["errors"]) if "errors" in s else (),
        pricing=pricing,
        callback_data=callback,
        correlation=correlation_of(callback),
    )


def _flow_reply(reply: Mapping[str, Any]) -> FlowReply:
    text = _str(reply.get("response_json"))
    response: dict[str, Any] = {}
    if text is not None:
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict):
            response = decoded
    return FlowReply(
        name=_str(reply.get("name")), body=_str(reply.get("body")), response=response, response_json=text
    )


def _change(field: str, at: datetime, raw: Mapping[str, Any], account: str | None) -> ChangeEvent:
    return ChangeEvent(provider="meta", field=field, timestamp=at, raw=raw, account_id=account)


# --- small helpers -----------------------------------------------------------------------------
def _ts_or_none(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _errors(value: Any) -> tuple[ErrorInfo, ...]:
    out = []
    for e in _list(value):
        if not isinstance(e, dict):
            continue
        code = e.get("code")
        data = e.get("error_data")
        out.append(
            ErrorInfo(
                code=code if isinstance(code, int) and not isinstance(code, bool) else _int(code),
                message=_str(e.get("message")) or _str(e.get("title")) or "",
                title=_str(e.get("title")),
                details=_str(data.get("details")) if isinstance(data, dict) else None,
                href=_str(e.get("href")),
            )
        )
    return tuple(out)


def _match_contact(
    contacts: Sequence[Mapping[str, Any]], phone: str | None, user_id: str | None
) -> Mapping[str, Any] | None:
    for c in contacts:
        if (phone and _digits(c.get("wa_id")) == phone) or (user_id and c.get("user_id") == user_id):
            return c
    if len(contacts) == 1 and not phone and not user_id:
        return contacts[0]
    return None


def _synthetic_id(m: Mapping[str, Any]) -> str:
    try:
        text = json.dumps(m, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):  # keys of mixed types, absurd nesting
        text = repr(sorted(map(str, m)))
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"meta-noid-{digest[:32]}"


def _coordinate(value: Any) -> float:
    """A latitude or longitude: a finite number (``1e400`` or ``10**400`` is malformed)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"coordinate {value!r} is not a finite number")
    return number


class _Now:
    """Receipt time, read from the clock only when a payload lacks a timestamp."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: datetime | None = None

    def get(self) -> datetime:
        if self.value is None:
            self.value = datetime.now(timezone.utc)
        return self.value


_TS_CACHE: dict[Any, datetime] = {}


def _ts(value: Any, default: datetime | _Now) -> datetime:
    # Webhooks arrive in bursts stamped with the same second: remember recent conversions.
    cached = _TS_CACHE.get(value) if type(value) is str else None
    if cached is not None:
        return cached
    try:  # tz positional: passed as a keyword, the call takes half as long again
        result = datetime.fromtimestamp(int(value), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return default.get() if isinstance(default, _Now) else default
    if type(value) is str:
        if len(_TS_CACHE) >= 256:
            _TS_CACHE.clear()
        _TS_CACHE[value] = result
    return result


def _dt(now: datetime | _Now) -> datetime:
    return now.get() if isinstance(now, _Now) else now


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if type(value) is str:  # the common case, first
        return value or None
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value)
    return text if text != "" else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _digits(value: Any) -> str | None:
    text = value if type(value) is str else _str(value)
    if not text:
        return None
    return normalize(text) or None
