"""Who may use the server: anyone on loopback, only token holders otherwise.

Bound to loopback (the device's own screen), no token is needed unless one is
set; requests must then name a loopback host, which stops a web page from
reaching the server through DNS rebinding. Bound to anything else, every request
must carry the token, as an ``Authorization: Bearer`` header (API clients) or as
an HttpOnly, SameSite=Strict cookie that the page sets once from ``?token=``.
Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

TOKEN_ENV = "PNEUMO_TOKEN"
COOKIE = "pneumo_token"


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; False for 0.0.0.0, names and LAN addresses."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_matches(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def presented_token(headers, cookies) -> str | None:
    """The token a request carries: its bearer header, else its cookie."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return cookies.get(COOKIE)


def host_header_is_loopback(host_header: str) -> bool:
    """The ``Host`` header names a loopback host (port ignored)."""
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":")[0]
    return bool(host) and is_loopback(host)
