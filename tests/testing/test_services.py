"""The skip-or-fail rule for tests that need a real server."""

from __future__ import annotations

import socket

import pytest

from eki_whatsapp.testing.services import (
    require_executable,
    require_module,
    require_service,
    service_reachable,
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_missing_service_skips_with_its_name_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EKI_REQUIRE_SERVICES", raising=False)
    port = _closed_port()
    with pytest.raises(pytest.skip.Exception, match=f"PostgreSQL is not reachable on 127.0.0.1:{port}"):
        require_service("PostgreSQL", "127.0.0.1", port)


def test_missing_service_fails_when_ci_requires_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKI_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="EKI_REQUIRE_SERVICES=1"):
        require_service("Redis", "127.0.0.1", _closed_port())


def test_listening_service_passes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        assert service_reachable("127.0.0.1", port)
        require_service("anything", "127.0.0.1", port)


def test_missing_program_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EKI_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-program-eki"):
        require_executable("A browser", "no-such-program-eki")
    monkeypatch.setenv("EKI_REQUIRE_SERVICES", "true")
    with pytest.raises(pytest.fail.Exception):
        require_executable("A browser", "no-such-program-eki")
    assert require_executable("Python", "python3", "python")


def test_missing_client_library_skips_on_a_laptop_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EKI_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_eki is not installed: pip it"):
        require_module("no_such_module_eki", hint="pip it")
    monkeypatch.setenv("EKI_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="EKI_REQUIRE_SERVICES=1"):
        require_module("no_such_module_eki")
    assert require_module("json").dumps([1]) == "[1]"
