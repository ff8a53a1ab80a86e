"""Messages as Twilio's Messages API takes them: what it can carry (decided without a request)
and the form fields of each message. Shapes: docs/wire.md §9."""

from __future__ import annotations

from collections.abc import Callable

from ...messages import (
    Buttons,
    Catalog,
    Contacts,
    CtaUrl,
    Flow,
    ListMenu,
    Location,
    LocationRequest,
    Media,
    Message,
    Product,
    ProductList,
    Reaction,
    Template,
    Text,
)
from ..base import ProviderError, TemplateError, UnsupportedMessage
from .content import (
    Form,
    content_form,
    content_variables_json,
    cta_text,
    geo_uri,
    numbered_text,
    template_variables,
)

__all__ = ["render", "unsupported_reason"]

#: Kinds Twilio sends only as a Content Template of their own (``content_sid``).
CONTENT_ONLY = (Flow, Product, ProductList, Catalog)


def unsupported_reason(message: Message, template_sid: Callable[[Template], str | None]) -> str | None:
    """Why Twilio cannot send ``message`` (``None``: it can), decided without a request;
    ``template_sid`` finds the ContentSid of a template."""
    if isinstance(message, Reaction):
        return "Twilio's Messages API cannot send reactions; send a Text instead"
    if isinstance(message, Contacts):
        return "Twilio's Messages API cannot send contact cards; send them through Meta"
    if isinstance(message, LocationRequest):
        return "Twilio has no location-request message; send it through Meta or ask in a Text"
    if isinstance(message, Media) and message.url is None:
        return "Twilio sends media by public URL only: pass Media(url=...) instead of a Meta media_id"
    header = getattr(message, "header", None)
    if isinstance(message, (Buttons, CtaUrl)) and isinstance(header, Media) and header.url is None:
        return "Twilio needs a public URL for a media header, not a Meta media_id"
    if isinstance(message, CONTENT_ONLY) and not message.content_sid:
        kind = "twilio/flows" if isinstance(message, Flow) else "twilio/catalog"
        return (
            f"Twilio sends a {type(message).__name__} only as a {kind} Content Template: create "
            "one (Twilio Console > Content Template Builder) and pass content_sid=, or send it "
            "through Meta"
        )
    if isinstance(message, Template) and not template_sid(message):
        return (
            f"Template {message.name!r} has no content_sid: Twilio sends templates as Content "
            "Templates; push it with `eki-whatsapp templates push` (then it is found by name), "
            "or create one in Twilio Console > Content Template Builder and pass its HX… SID "
            "as Template(..., content_sid=...)"
        )
    if not isinstance(message, (Text, Media, Template, Buttons, ListMenu, CtaUrl, Location, *CONTENT_ONLY)):
        return f"cannot send {type(message).__name__}: pass a str or a model from eki_whatsapp.messages"
    return None


def render(
    provider: str, template_sid: Callable[[Template], str | None], message: Message
) -> str | Form | tuple[Form, str]:
    """What a message is on Twilio: a body, a form (media, content, location), or a form to send
    before a text (a media header); refuses what Twilio cannot carry."""
    reason = unsupported_reason(message, template_sid)
    if reason is not None:
        if isinstance(message, Template):
            error: ProviderError = TemplateError(reason, provider=provider)
            error.attempts = 0
            raise error
        raise _unsupported(reason)
    if isinstance(message, Text):
        return message.body
    if isinstance(message, Media):
        form: Form = [("MediaUrl", str(message.url))]
        if message.caption:
            form.insert(0, ("Body", message.caption))
        return form
    if isinstance(message, Template):
        sid = template_sid(message)
        return content_form(str(sid), content_variables_json(template_variables(message)))
    if isinstance(message, (Buttons, ListMenu, CtaUrl, *CONTENT_ONLY)) and message.content_sid:
        return content_form(message.content_sid, content_variables_json(message.content_variables))
    if isinstance(message, (Buttons, ListMenu, CtaUrl)):
        text = cta_text(message) if isinstance(message, CtaUrl) else numbered_text(message)
        header = message.header
        if isinstance(header, Media):
            return ([("MediaUrl", str(header.url))], text)
        return text
    if isinstance(message, Location):
        label = message.name or message.address or ""
        body = ", ".join(p for p in (message.name, message.address) if p) or (
            f"{message.latitude},{message.longitude}"
        )
        action = geo_uri(message.latitude, message.longitude)
        if label:
            action += f"|{label}"
        return [("Body", body), ("PersistentAction", action)]
    raise _unsupported(  # pragma: no cover - unsupported_reason refused it already
        f"cannot send {type(message).__name__}: pass a str or a model from eki_whatsapp.messages"
    )


def _unsupported(text: str) -> UnsupportedMessage:
    error = UnsupportedMessage(text, provider="twilio")
    error.attempts = 0
    return error
