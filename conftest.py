"""Test-wide guard: nothing in the test suite may reach beyond this machine.

Connections and name lookups are allowed only for loopback addresses and ``localhost``; anything
else fails loudly, so a test that would touch the internet is caught instead of passing by luck.
Subprocesses (e.g. pip in the packaging test) are not affected.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "testserver"}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _check_host(host: Any) -> None:
    if host is None or isinstance(host, bytes):
        host = host.decode() if isinstance(host, bytes) else host
    if host is None or host in _LOCAL_NAMES:
        return
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        raise OSError(f"tests must not touch the network (lookup of {host!r})") from None
    if not (ip.is_loopback or ip.is_unspecified):
        raise OSError(f"tests must not touch the network (connection to {host})")


def _connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_host(address[0])
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_host(address[0])
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _check_host(host)
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _getaddrinfo

# The command line and the doctor follow the locale (eki_whatsapp.i18n); tests assert their English
# texts unless they choose a language themselves, whatever the machine's LANG is.
os.environ["EKI_WHATSAPP_LANGUAGE"] = "en"
