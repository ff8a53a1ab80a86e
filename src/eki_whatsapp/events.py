"""Provider-neutral, typed, immutable webhook events.

A Meta JSON body or a Twilio form post becomes a list of these objects; handlers never see
the wire format (it stays available in ``.raw``). Events are built with keyword arguments only
(``StatusUpdate(provider="meta", message_id=..., ...)``): a new field never shifts the others.

* :class:`InboundMessage` — something a user sent (text, media, a button tap, ...).
* :class:`StatusUpdate` — what happened to a message you sent (sent/delivered/read/failed).
* :class:`ChangeEvent` — any other webhook notification (template status, account update, ...),
  passed through with its raw data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .providers.base import ProviderError

#: ``"meta"``, ``"twilio"``, or the name of a provider you register.
ProviderName = str

#: Message kinds the parsers produce. Unknown kinds become ``"unsupported"``.
MESSAGE_TYPES = frozenset(
    {
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contacts",
        "button",
        "interactive",
        "reaction",
        "order",
        "system",
        "request_welcome",
        "edit",
        "revoke",
        "unsupported",
    }
)

#: Order of delivery states; a stored status is never downgraded.
STATUS_RANK: Mapping[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "played": 6,
    "undelivered": 7,
    "failed": 7,
    "canceled": 7,
}


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A piece of media in an inbound message.

    Meta gives an ``id`` (resolve it with the Graph API, Bearer auth; valid 7 days) and
    sometimes a ``url``; Twilio gives a ``url`` (``MediaUrl{N}``, may need Basic auth).
    """

    provider: ProviderName
    id: str | None = None
    url: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False
    animated: bool = False


@dataclass(frozen=True, slots=True)
class InboundLocation:
    """A location a user shared (a pin, or a place with name/address).

    To *send* a location use :class:`eki_whatsapp.messages.Location`.
    """

    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class InboundReaction:
    """An emoji reaction a user made; ``emoji`` is ``None`` when they removed it.

    To *send* a reaction use :class:`eki_whatsapp.messages.Reaction`.
    """

    message_id: str | None
    emoji: str | None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error reported by a provider (code + message), as found in a webhook."""

    code: int | None
    message: str
    title: str | None = None
    details: str | None = None
    href: str | None = None

    def as_exception(self, provider: ProviderName) -> ProviderError:
        """The typed :class:`~eki_whatsapp.providers.base.ProviderError` for this code."""
        from .providers.base import classify_error

        return classify_error(provider, self.code, self.details or self.message, raw=self)


@dataclass(frozen=True, slots=True)
class Pricing:
    """Pricing data of a status, as given by the provider (raw strings, no enums)."""

    category: str | None = None
    pricing_model: str | None = None
    billable: bool | None = None
    type: str | None = None
    conversation_id: str | None = None
    conversation_origin: str | None = None
    #: When the conversation's window ends (Meta ``conversation.expiration_timestamp``).
    conversation_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Referral:
    """Click-to-WhatsApp ad attribution on the first message after an ad click."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    ctwa_clid: str | None = None
    #: The ad's media: Meta ``image_url``/``video_url``/``thumbnail_url``; Twilio
    #: ``ReferralMediaUrl`` (as ``image_url`` or ``video_url`` by its content type).
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    #: Twilio ``ReferralMediaId`` (a media id of the ad's media).
    media_id: str | None = None
    #: The ad's pre-filled welcome message (Meta ``welcome_message.text``).
    welcome_message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowReply:
    """A WhatsApp Flow's answer (Meta ``interactive.nfm_reply``).

    Attributes:
        name: ``flow`` (or ``address_message`` for an address form).
        body: the text WhatsApp shows in the chat (``"Sent"``).
        response: ``response_json`` parsed: the fields the user filled in, and ``flow_token``.
        response_json: the JSON text as received (``None`` when absent).
    """

    name: str | None
    body: str | None
    response: Mapping[str, Any] = dc_field(default_factory=dict, repr=False)
    response_json: str | None = dc_field(default=None, repr=False)

    @property
    def flow_token(self) -> str | None:
        """The token sent with the Flow (:attr:`eki_whatsapp.messages.Flow.token`)."""
        token = self.response.get("flow_token")
        return str(token) if token is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPermissionReply:
    """The user's answer to a call-permission request (Meta ``call_permission_reply``).

    Attributes:
        response: ``accept`` or ``reject``.
        permanent: whether the permission does not expire.
        expires_at: when a temporary permission ends.
        source: ``user_action`` or ``automatic``, as given.
    """

    response: str | None
    permanent: bool = False
    expires_at: datetime | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferredProduct:
    """The catalog product a user asks about (Meta ``context.referred_product``)."""

    catalog_id: str | None
    product_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A message a user sent to the business.

    Attributes:
        provider: ``"meta"`` or ``"twilio"`` — the channel it came in on (replies go there).
        id: wamid (Meta) or MessageSid (Twilio); unique per provider.
        sender: the user — E.164 digits without ``+``/``whatsapp:`` when a phone number is known,
            otherwise the business-scoped user id (BSUID).
        recipient: the business number (digits) or Meta phone-number id that received it.
        type: ``"text"``, ``"image"``, ``"video"``, ``"audio"``, ``"document"``, ``"sticker"``,
            ``"location"``, ``"contacts"``, ``"button"``, ``"interactive"``, ``"reaction"``,
            ``"order"``, ``"system"``, ``"unsupported"``, ...
        text: what the user typed, a media caption, or the title of the tapped button/list row.
        timestamp: when the provider received it (aware, UTC).
        profile_name: the user's WhatsApp display name, when given.
        reply_to: id of the message this one replies to (a swipe-reply or a button tap).
        media: the attached media (empty tuple when none).
        raw: the provider's data for this message (Meta: the message object plus its ``value``
            context; Twilio: the form parameters).
    """

    provider: ProviderName
    id: str
    sender: str
    recipient: str
    type: str
    timestamp: datetime
    raw: Mapping[str, Any] = dc_field(repr=False, compare=False)
    text: str | None = None
    profile_name: str | None = None
    reply_to: str | None = None
    media: tuple[MediaRef, ...] = ()
    #: Phone digits of the sender, when known (``None`` for username-only users).
    sender_phone: str | None = None
    #: Business-scoped user id (Meta BSUID, Twilio ``ExternalUserId``), when given.
    sender_user_id: str | None = None
    #: Business number as digits (Meta ``display_phone_number``, Twilio ``To``).
    business_number: str | None = None
    #: Id of the tapped button / list row, or the template quick-reply payload.
    payload: str | None = None
    #: ``button_reply``, ``list_reply``, ``nfm_reply``, ... for ``type="interactive"``.
    interactive_type: str | None = None
    location: InboundLocation | None = None
    contacts: tuple[Mapping[str, Any], ...] = dc_field(default=(), repr=False)
    reaction: InboundReaction | None = None
    order: Mapping[str, Any] | None = dc_field(default=None, repr=False)
    system: Mapping[str, Any] | None = dc_field(default=None, repr=False)
    referral: Referral | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    errors: tuple[ErrorInfo, ...] = ()
    #: The provider-specific kind when ``type`` is ``"unsupported"`` (e.g. ``"poll"``).
    unsupported_type: str | None = None
    #: The description of the tapped list row (``list_reply.description``).
    reply_description: str | None = None
    #: A WhatsApp Flow's answer (``interactive_type="nfm_reply"``).
    flow_reply: FlowReply | None = None
    #: The answer to a call-permission request (``interactive_type="call_permission_reply"``).
    call_permission: CallPermissionReply | None = None
    #: The product a user asks about from a catalog message (an enquiry).
    referred_product: ReferredProduct | None = None
    #: For ``type="edit"`` and ``"revoke"``: the id of the message edited or deleted. An edit
    #: carries the new text (or caption) in ``text`` and the new media in ``media``.
    original_id: str | None = None
    #: The user's WhatsApp username (``contacts[].profile.username``), when given.
    username: str | None = None

    @property
    def kind(self) -> Literal["message"]:
        return "message"

    @property
    def user(self) -> str:
        """Alias of :attr:`sender`: the user this conversation is with."""
        return self.sender


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """What happened to a message the business sent.

    Attributes:
        provider: ``"meta"`` or ``"twilio"``.
        message_id: id of *your* outbound message (wamid / MessageSid).
        status: lower case: ``sent``, ``delivered``, ``read``, ``failed`` (both providers),
            ``played`` (Meta), ``queued``/``sending``/``undelivered``/... (Twilio).
        recipient: the user (digits or BSUID), when given.
        timestamp: aware UTC datetime.
        errors: provider errors (``failed``/``undelivered`` only, normally).
        pricing: category/model/billable as given, when present.
        raw: the provider's data for this status.
    """

    provider: ProviderName
    message_id: str
    status: str
    timestamp: datetime
    raw: Mapping[str, Any] = dc_field(repr=False, compare=False)
    recipient: str | None = None
    recipient_user_id: str | None = None
    #: The business number / phone-number id that sent the message, when known.
    business_number: str | None = None
    errors: tuple[ErrorInfo, ...] = ()
    pricing: Pricing | None = None
    #: ``biz_opaque_callback_data`` (Meta) echoed back, when set when sending.
    callback_data: str | None = None
    #: The correlation key the router sent with the message (Meta: in
    #: ``biz_opaque_callback_data``; Twilio: in the ``StatusCallback`` URL), echoed back: how a
    #: send whose answer was lost is matched to its message (docs/deployment.md).
    correlation: str | None = None
    #: ``individual`` or ``group`` (Meta ``recipient_type``), when given.
    recipient_type: str | None = None
    #: In a group: the participant this status is about (Meta ``recipient_participant_id``).
    group_participant: str | None = None

    @property
    def kind(self) -> Literal["status"]:
        return "status"

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "undelivered")

    @property
    def error(self) -> ProviderError | None:
        """The first error as a typed :class:`~eki_whatsapp.providers.base.ProviderError`."""
        if not self.errors:
            return None
        return self.errors[0].as_exception(self.provider)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeEvent:
    """Any other webhook notification (e.g. Meta ``message_template_status_update``,
    ``account_update``, ``user_preferences``), with its raw ``value``."""

    provider: ProviderName
    field: str
    timestamp: datetime
    raw: Mapping[str, Any] = dc_field(repr=False, compare=False)
    account_id: str | None = None

    @property
    def kind(self) -> Literal["change"]:
        return "change"


Event = InboundMessage | StatusUpdate | ChangeEvent

#: Old names of the inbound types: they read like the outbound models of the same name.
_RENAMED = {"Location": "InboundLocation", "Reaction": "InboundReaction"}


def renamed(module: str, name: str) -> Any:
    """The inbound type behind an old ambiguous name, with a :class:`DeprecationWarning`."""
    import warnings

    new = _RENAMED[name]
    warnings.warn(
        f"{module}.{name} is the *inbound* {name.lower()} type, now named {new}; "
        f"to send one use eki_whatsapp.messages.{name}",
        DeprecationWarning,
        stacklevel=3,
    )
    return globals()[new]


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        return renamed(__name__, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
