"""A recipient no provider can send to is refused first: before the window, the opt-outs, the
policy or any request (issue 12)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from eki_whatsapp import EkiWhatsAppError
from eki_whatsapp.providers.base import InvalidRecipient
from eki_whatsapp.routing import Router

from .fakes import FakeProvider


@pytest.mark.parametrize("to", ["not a number", "+0012", "12345", "whatsapp:", "   ", ""])
def test_an_invalid_recipient_raises_invalid_recipient_before_any_window_check(
    make_router: Callable[..., Router], meta: FakeProvider, twilio: FakeProvider, to: str
) -> None:
    router = make_router()  # nobody wrote: every window is closed, no fallback template

    with pytest.raises(InvalidRecipient) as info:
        router.send(to, "hello")

    assert info.value.attempts == 0 and "'to' is" in str(info.value)
    assert "E.164" in str(info.value)  # says what to pass instead
    assert meta.attempts == twilio.attempts == 0
    assert router.store.list_log() == []


@pytest.mark.parametrize("to", [None, 5511987654321, b"5511987654321", ["5511987654321"]])
def test_a_recipient_that_is_not_text_raises_a_typed_error_naming_the_argument(
    make_router: Callable[..., Router], meta: FakeProvider, to: Any
) -> None:
    router = make_router()

    with pytest.raises(InvalidRecipient) as info:
        router.send(to, "hello")

    assert isinstance(info.value, EkiWhatsAppError)
    message = str(info.value)
    assert message.startswith("'to' must be a str") and "+5511987654321" in message
    assert meta.attempts == 0


@pytest.mark.parametrize("to", ["+55 11 98765-4321", "whatsapp:+5511987654321", "US.13491208655302741918"])
def test_every_form_of_a_valid_address_reaches_the_window_check(
    make_router: Callable[..., Router], to: str
) -> None:
    from eki_whatsapp.providers.base import WindowClosed

    with pytest.raises(WindowClosed):  # valid: refused only because nobody wrote
        make_router().send(to, "hello")
