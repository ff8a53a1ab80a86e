"""Inbound and outbound types have distinct names; the old ambiguous ones still work, with a warning."""

from __future__ import annotations

import pytest

import eki_whatsapp
from eki_whatsapp import InboundLocation, InboundReaction, messages
from eki_whatsapp.providers import UnsupportedMessage
from eki_whatsapp.providers.meta import MetaCloud


def test_inbound_and_outbound_names_differ() -> None:
    assert InboundLocation is not messages.Location
    assert InboundReaction is not messages.Reaction
    assert "InboundLocation" in eki_whatsapp.__all__ and "InboundReaction" in eki_whatsapp.__all__
    assert "Location" not in eki_whatsapp.__all__ and "Reaction" not in eki_whatsapp.__all__


@pytest.mark.parametrize(("old", "new"), [("Location", InboundLocation), ("Reaction", InboundReaction)])
def test_old_top_level_names_still_give_the_inbound_types_with_a_deprecation_warning(
    old: str, new: type
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"eki_whatsapp.messages.{old}"):
        assert getattr(eki_whatsapp, old) is new


@pytest.mark.parametrize("old", ["Location", "Reaction"])
def test_old_names_in_events_warn_too(old: str) -> None:
    with pytest.warns(DeprecationWarning, match="inbound"):
        exec(f"from eki_whatsapp.events import {old}", {})


def test_the_outbound_location_is_sendable_and_the_inbound_one_is_refused() -> None:
    meta = MetaCloud("token", "106540352242922")
    (body,) = meta.payloads("+16505551234", messages.Location(41.39, 2.17, name="Eki HQ"))
    assert body["type"] == "location"
    with pytest.warns(DeprecationWarning):
        inbound = eki_whatsapp.Location(latitude=41.39, longitude=2.17)
    with pytest.raises(UnsupportedMessage):
        meta.payloads("+16505551234", inbound)
    meta.close()


def test_unknown_names_are_still_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        _ = eki_whatsapp.NoSuchThing  # type: ignore[attr-defined]
