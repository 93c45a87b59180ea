"""URL rules shared by the settings checks, the transport and the API session.

A token or client secret may only travel over HTTPS, except to this machine, where a
sandbox or a test server stands in for the real provider.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "is_loopback", "is_safe_endpoint", "is_origin", "origin"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback(url: str) -> bool:
    try:
        return (urlsplit(url).hostname or "").lower() in LOOPBACK_HOSTS
    except ValueError:
        return False


def is_safe_endpoint(url: str) -> bool:
    """HTTPS anywhere, plain HTTP only on a loopback host; False for anything that is not a URL.

    Never raises: the value may come from a provider's reply, a callback or a stored column.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except (ValueError, TypeError, AttributeError):
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname.lower() in LOOPBACK_HOSTS


def is_origin(url: str) -> bool:
    """True for ``scheme://host[:port]`` with nothing after it but an optional ``/``.

    What a provider may name as an API domain: a path, query, fragment or user name in it
    would be a place to hide another host or a surprise.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except (ValueError, TypeError, AttributeError):
        return False
    return (
        bool(parts.hostname)
        and parts.path in ("", "/")
        and not (parts.query or parts.fragment or parts.username or parts.password or "@" in parts.netloc)
    )


def origin(url: str) -> str:
    """``scheme://host[:port]`` with the default port dropped, for exact comparisons.

    "" for anything that is not a URL: the value may come from a callback's query string.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except (ValueError, AttributeError):  # "http://[::1", "https://a:99999", not a string
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
