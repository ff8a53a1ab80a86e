"""Tests that need a real server (PostgreSQL, Redis, RabbitMQ, a browser).

On a developer's laptop such a test skips with the reason; where the environment says the
services must be there (``EKI_REQUIRE_SERVICES=1``, set by CI) it fails instead, so a missing
service can never turn a CI run green by skipping::

    from eki_whatsapp.testing.services import require_service

    def test_postgres_store():
        require_service("PostgreSQL", "127.0.0.1", 5432)
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
from types import ModuleType

__all__ = [
    "require_executable",
    "require_module",
    "require_service",
    "service_reachable",
    "services_required",
]

REQUIRE_ENV = "EKI_REQUIRE_SERVICES"


def services_required() -> bool:
    """Whether a missing service is a failure (``EKI_REQUIRE_SERVICES`` is set to a true value)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def service_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _missing(reason: str, *, module_level: bool = False) -> None:
    import pytest  # only tests call this; the library does not depend on pytest

    if services_required():
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 says it must be there)", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


def require_service(name: str, host: str, port: int, *, hint: str = "") -> None:
    """Skip (or, under ``EKI_REQUIRE_SERVICES=1``, fail) unless ``host:port`` answers."""
    if not service_reachable(host, port):
        _missing(f"{name} is not reachable on {host}:{port}" + (f": {hint}" if hint else ""))


def require_executable(name: str, *candidates: str, hint: str = "") -> str:
    """The path of the first program found among ``candidates``; skip or fail when none is."""
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    _missing(f"{name} is not installed ({', '.join(candidates)})" + (f": {hint}" if hint else ""))
    raise AssertionError("unreachable")  # pytest.skip/fail raise


def require_module(name: str, *, hint: str = "") -> ModuleType:
    """The module ``name`` (a service's client library: psycopg, celery); skip, or fail under
    ``EKI_REQUIRE_SERVICES=1``, when it cannot be imported. May be called at module level."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"{name} is not installed" + (f": {hint}" if hint else ""), module_level=True)
        raise AssertionError("unreachable") from None  # pytest.skip/fail raise
