"""Server metadata (OpenID Connect Discovery 1.0, RFC 8414) and signing keys (JWKS): fetched, checked, cached.

A provider configured with ``ISSUER`` learns its endpoints here, lazily, the first time one is
needed (an authorisation request, a token request), never at import or start-up:

1. ``{ISSUER}/.well-known/openid-configuration``; when the server has none (404 or 410),
2. RFC 8414's ``{ISSUER}/.well-known/oauth-authorization-server`` (and, for an issuer with a
   path, the form of RFC 8414 section 3.1, ``{origin}/.well-known/oauth-authorization-server{path}``).

Every request goes through the one transport (``HTTP_TIMEOUT`` for the whole exchange, 1 MiB,
HTTPS or loopback HTTP, no redirects). A document is used only when its ``issuer`` equals the
configured one exactly (OpenID Connect Discovery section 4.3, RFC 8414 section 3.3: otherwise
another server could name itself the issuer and collect the codes) and every endpoint in it is
``https://`` (``http://`` on loopback only, as for configured endpoints).

**Caches.** Metadata and key sets are kept in this process for ``DISCOVERY_TTL`` seconds (one
hour by default), at most :data:`MAX_ENTRIES` of each, and in Django's cache too when the site
configures one (``CACHES``), so that the workers of a site share one fetch. What comes back
from Django's cache is checked again as if it had just been fetched. Failures are not cached:
the next request tries again. A key set is fetched again, once per ID token, when a token is
signed with a key id it does not hold (the provider rotated its keys).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed

from .conf import bigoauth_settings
from .exceptions import ProviderError, ProviderUnavailable
from .netloc import is_safe_endpoint, origin
from .redaction import printable
from .transport import get_transport

__all__ = ["MAX_ENTRIES", "Metadata", "clear_cache", "get_jwks", "get_metadata", "metadata_urls"]

logger = logging.getLogger("django_bigoauth")

#: Most issuers (and key sets) kept per process; a site has a handful.
MAX_ENTRIES = 64
#: Most keys read from one key set.
MAX_KEYS = 100
_CACHE_PREFIX = "django_bigoauth.discovery."
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint", "jwks_uri")


@dataclasses.dataclass(frozen=True)
class Metadata:
    """What the app uses of a server's metadata document, checked."""

    issuer: str
    #: read from ``/.well-known/openid-configuration`` (False: RFC 8414's document)
    openid: bool
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str = ""
    userinfo_endpoint: str = ""
    jwks_uri: str = ""
    #: RFC 9207: the server sends ``iss`` on every authorisation response
    authorization_response_iss_parameter_supported: bool = False
    id_token_signing_alg_values_supported: tuple[str, ...] = ()


def metadata_urls(issuer: str) -> list[tuple[str, bool]]:
    """Where the metadata of ``issuer`` may be, in the order tried: ``(url, is_openid_configuration)``."""
    base = issuer.rstrip("/")
    urls = [
        (f"{base}/.well-known/openid-configuration", True),
        (f"{base}/.well-known/oauth-authorization-server", False),
    ]
    path = urlsplit(issuer).path.rstrip("/")
    if path:
        urls.append((f"{origin(issuer)}/.well-known/oauth-authorization-server{path}", False))
    return urls


def get_metadata(issuer: str, *, name: str) -> Metadata:
    """The checked metadata of ``issuer``, from a cache or fetched now; ``ProviderError`` when it cannot be had.

    ``name`` is the provider's display name, for messages. ``ProviderTimeout`` when the server
    did not answer within ``HTTP_TIMEOUT``.
    """
    cached = _metadata.get(issuer)
    if cached is not None:
        return cached
    shared = _shared_get("metadata", issuer)
    if isinstance(shared, dict):
        try:
            metadata = _checked_metadata(issuer, shared.pop("_openid", True), shared, name=name)
        except ProviderError:
            metadata = None  # not what we stored: fetch it again
        if metadata is not None:
            _metadata.put(issuer, metadata)
            return metadata
    metadata = _fetch_metadata(issuer, name=name)
    _metadata.put(issuer, metadata)
    _shared_set("metadata", issuer, {**_document(metadata), "_openid": metadata.openid})
    return metadata


def get_jwks(jwks_uri: str, *, name: str, refresh: bool = False) -> list[dict[str, Any]]:
    """The keys of the key set at ``jwks_uri`` (dicts, as published); ``refresh`` fetches them anew."""
    if not refresh:
        cached = _jwks.get(jwks_uri)
        if cached is not None:
            return cached
        shared = _shared_get("jwks", jwks_uri)
        if isinstance(shared, list):
            keys = _checked_keys(shared)
            _jwks.put(jwks_uri, keys)
            return keys
    reply = get_transport().get(jwks_uri, what=f"{name}'s key set")
    _check_status(reply.status, f"{name}'s key set")
    data = reply.json()
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ProviderError(f"{name}'s key set at {origin(jwks_uri)} is not a JSON Web Key Set.")
    keys = _checked_keys(data["keys"])
    _jwks.put(jwks_uri, keys)
    _shared_set("jwks", jwks_uri, keys)
    logger.info("Fetched the key set of %s (%d keys)", name, len(keys))
    return keys


def clear_cache() -> None:
    """Forget every cached document and key set of this process (Django's cache keeps its own TTL)."""
    _metadata.clear()
    _jwks.clear()


# -- fetching and checking ----------------------------------------------------------------------


def _fetch_metadata(issuer: str, *, name: str) -> Metadata:
    what = f"{name}'s discovery document"
    for url, openid in metadata_urls(issuer):
        reply = get_transport().get(url, what=what)
        if reply.status in (404, 410):
            continue  # not published here: try the next well-known place
        _check_status(reply.status, what)
        data = reply.json()
        if not isinstance(data, dict):
            raise ProviderError(f"{what} at {origin(url)} is not a JSON object.")
        metadata = _checked_metadata(issuer, openid, data, name=name)
        logger.info("Read the %s metadata of %s", "OpenID Connect" if openid else "RFC 8414", name)
        return metadata
    raise ProviderError(
        f"{name} publishes no OpenID Connect or RFC 8414 metadata under its ISSUER ({origin(issuer)}): "
        "check ISSUER, or give AUTHORIZE_URL and TOKEN_URL instead."
    )


def _check_status(status: int, what: str) -> None:
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"{what} is not available (HTTP {status}).", status=status)
    if status != 200:
        raise ProviderError(f"{what} answered HTTP {status}.", status=status)


def _checked_metadata(issuer: str, openid: bool, data: dict[str, Any], *, name: str) -> Metadata:
    what = f"{name}'s discovery document"
    found = data.get("issuer")
    if found != issuer:
        # The exact string (Discovery 1.0 section 4.3): no trailing-slash or case leniency.
        raise ProviderError(
            f"{what} names the issuer {printable(found, limit=120)!r}, not the configured ISSUER "
            f"{printable(issuer, limit=120)!r}; it is not used."
        )
    values: dict[str, Any] = {}
    for key in _ENDPOINTS:
        url = data.get(key)
        if url in (None, ""):
            values[key] = ""
            continue
        if not isinstance(url, str) or not is_safe_endpoint(url):
            raise ProviderError(
                f"{what} names a {key} that is not an https:// URL "
                f"({printable(url, limit=120)!r}; plain http:// is only allowed on loopback); it is not used."
            )
        values[key] = url
    for key in ("authorization_endpoint", "token_endpoint") + (("jwks_uri",) if openid else ()):
        if not values[key]:
            raise ProviderError(f"{what} has no {key}; it is not used.")
    algorithms = data.get("id_token_signing_alg_values_supported") or ()
    if not isinstance(algorithms, (list, tuple)):
        algorithms = ()
    return Metadata(
        issuer=issuer,
        openid=bool(openid),
        authorization_response_iss_parameter_supported=data.get("authorization_response_iss_parameter_supported")
        is True,
        id_token_signing_alg_values_supported=tuple(str(alg) for alg in algorithms if isinstance(alg, str)),
        **values,
    )


def _document(metadata: Metadata) -> dict[str, Any]:
    document = dataclasses.asdict(metadata)
    del document["openid"]
    document["id_token_signing_alg_values_supported"] = list(metadata.id_token_signing_alg_values_supported)
    return document


def _checked_keys(keys: list[Any]) -> list[dict[str, Any]]:
    """The keys that look like keys: dicts with a ``kty``, at most :data:`MAX_KEYS`."""
    return [key for key in keys if isinstance(key, dict) and isinstance(key.get("kty"), str)][:MAX_KEYS]


# -- the caches ---------------------------------------------------------------------------------


class _TTLCache:
    """A small thread-safe dict whose entries expire after ``DISCOVERY_TTL`` seconds; the oldest goes first."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: str, value: Any) -> None:
        ttl = _ttl()
        if ttl <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_metadata = _TTLCache()
_jwks = _TTLCache()


def _ttl() -> float:
    try:
        return max(0.0, float(bigoauth_settings.DISCOVERY_TTL))
    except (TypeError, ValueError):
        return 0.0


def _shared_cache() -> Any:
    """Django's default cache when the site configures ``CACHES``; otherwise None (each process its own)."""
    # django-stubs' plugin types ``settings`` by the setting names it knows, and is_overridden is a
    # method of Django's Settings, not a setting.
    if not settings.is_overridden("CACHES"):  # type: ignore[misc]
        return None
    from django.core.cache import caches

    return caches["default"]


def _shared_key(kind: str, url: str) -> str:
    return _CACHE_PREFIX + kind + "." + hashlib.sha256(url.encode()).hexdigest()


def _shared_get(kind: str, url: str) -> Any:
    try:
        cache = _shared_cache()
        return cache.get(_shared_key(kind, url)) if cache is not None else None
    except Exception as exc:  # noqa: BLE001 - a cache that is down must not stop a sign-in
        logger.warning("Django's cache could not be read (%s); fetching %s metadata instead", type(exc).__name__, kind)
        return None


def _shared_set(kind: str, url: str, value: Any) -> None:
    ttl = _ttl()
    if ttl <= 0:
        return
    try:
        cache = _shared_cache()
        if cache is not None:
            cache.set(_shared_key(kind, url), value, timeout=ttl)
    except Exception as exc:  # noqa: BLE001
        logger.warning("Django's cache could not be written (%s)", type(exc).__name__)


def _clear_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("BIGOAUTH", "CACHES"):
        clear_cache()


setting_changed.connect(_clear_on_setting_changed, dispatch_uid="django_bigoauth.discovery")
