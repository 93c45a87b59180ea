"""URL rules shared by the settings checks and the HTTP client.

A token or client secret may only travel over HTTPS, except to this machine, where a
sandbox or a test server stands in for the real provider.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() in LOOPBACK_HOSTS


def is_safe_endpoint(url: str) -> bool:
    """HTTPS anywhere, plain HTTP only on a loopback host."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback(url)


def origin(url: str) -> str:
    """``scheme://host[:port]`` with the default port dropped, for exact comparisons.

    "" for anything that is not a URL: the value may come from a callback's query string.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # "http://[::1", "https://a:99999", ...
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
