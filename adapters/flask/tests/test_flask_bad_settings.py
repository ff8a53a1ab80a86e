"""A bad setting stops a Flask app at start-up with the core's clear message (issue 16, item 4)."""

from __future__ import annotations

import pytest

from eki_whatsapp import SettingsError
from eki_whatsapp_flask import whatsapp_blueprint


def test_a_misspelt_provider_stops_the_blueprint_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("WHATSAPP_PROVIDER", "twillio")
    with pytest.raises(SettingsError, match=r"WHATSAPP_PROVIDER is 'twillio'.*Did you mean 'twilio'\?"):
        whatsapp_blueprint()
