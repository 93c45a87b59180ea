"""All outbound HTTP to providers: one object with the timeout, the size cap and the URL rules.

Token, revoke, identity, discovery and key requests all go through :func:`get_transport`, so
that one place decides:

* **where** a request may go: HTTPS anywhere, plain HTTP on loopback only, never a redirect
  (a token endpoint that redirects is answered as an error, not followed with the secret);
* **how long** it may take: ``HTTP_TIMEOUT`` for the whole exchange, not per read. A reply
  that drips one byte at a time would otherwise hold a refresh (and a waiting worker) for
  as long as the provider likes. A watchdog shuts the socket when the deadline passes;
* **how big** a reply may be: :attr:`Transport.max_reply_bytes` (1 MiB), counted after
  decompression, so a hostile reply cannot fill the memory of a web worker;
* **what leaves**: exception messages name the origin of the URL and the kind of failure,
  never a header, a form field or the text ``requests`` puts in its exceptions.

Sites and tests replace the transport with ``BIGOAUTH["TRANSPORT"]``, the import path of a
:class:`Transport` subclass: override :meth:`Transport.create_session` to add proxies, client
certificates or retries to the ``requests.Session`` used for every call (the pattern of
django-allauth's ``get_requests_session`` and anymail's ``create_session``).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Mapping
from typing import Any

import requests
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .conf import bigoauth_settings
from .exceptions import ProviderError, ProviderTimeout, ProviderUnavailable
from .netloc import is_safe_endpoint, origin

__all__ = ["NOT_JSON", "Reply", "Transport", "get_transport"]

#: What :meth:`Reply.json` returns for a body that is not JSON (or not JSON we can decode).
NOT_JSON: Any = type("NotJSON", (), {"__repr__": lambda self: "NOT_JSON", "__bool__": lambda self: False})()

_READ_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True, repr=False)
class Reply:
    """A provider's whole answer, read within the deadline and the size cap."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def __repr__(self) -> str:
        return f"<Reply {self.status} from {origin(self.url)!r}, {len(self.body)} bytes>"

    def json(self) -> Any:
        """The decoded body, or :data:`NOT_JSON`.

        Anything a provider sends must become an answer, never an exception: broken UTF-8,
        broken JSON, and nesting deep enough to exhaust the interpreter's recursion limit
        (``[`` repeated 200,000 times raises ``RecursionError`` in ``json.loads``).
        """
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return NOT_JSON


class Transport:
    """One ``requests.Session`` with the rules of the module docstring; see :func:`get_transport`."""

    #: replies larger than this, after decompression, are refused (``ProviderError``)
    max_reply_bytes: int = 1024 * 1024
    user_agent: str = "django_bigoauth"

    def __init__(self) -> None:
        self.session = self.create_session()

    def create_session(self) -> requests.Session:
        """The session every call uses; override to add proxies, certificates or retries."""
        session = requests.Session()
        adapter = _DeadlineAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    @sensitive_variables()
    def post_form(self, url: str, form: Mapping[str, str], *, what: str) -> Reply:
        """POST ``form`` as ``application/x-www-form-urlencoded`` (credentials in the body, never the URL)."""
        return self.request("POST", url, data=form, what=what)

    def get(self, url: str, *, what: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request("GET", url, headers=headers, what=what)

    @sensitive_variables()
    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request and read its whole reply; every failure is a ``ProviderError``.

        ``what`` names the endpoint in messages ("Bigin's token endpoint").
        """
        where = origin(url) or "an invalid URL"
        if not is_safe_endpoint(url):
            raise ProviderError(f"Refusing to send a request to {where}: plain HTTP is only allowed on loopback.")
        timeout = float(bigoauth_settings.HTTP_TIMEOUT)
        sent_headers = {"Accept": "application/json", "User-Agent": self.user_agent, **(headers or {})}
        with _Watchdog(timeout) as watchdog:
            try:
                response = self.session.request(
                    method,
                    url,
                    data=data,
                    headers=sent_headers,
                    timeout=(timeout, timeout),
                    allow_redirects=False,
                    stream=True,
                )
                try:
                    body = self._read_body(response, what)
                finally:
                    response.close()
            except (requests.RequestException, OSError, UnicodeError) as exc:
                failure: BaseException | None = exc
            else:
                failure = None
        if failure is not None:
            # Raised outside the except block, so that no __context__ keeps the original, whose
            # text can quote a header (the token) or the URL.
            raise self._failure(failure, watchdog.fired, what=what, where=where, timeout=timeout)
        if watchdog.fired:
            raise ProviderTimeout(f"{what} at {where} did not answer in time ({timeout:g} s).")
        return Reply(status=response.status_code, headers=dict(response.headers), body=body, url=url)

    @staticmethod
    def _failure(exc: BaseException, fired: bool, *, what: str, where: str, timeout: float) -> ProviderError:
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, UnicodeError)):
            # Raised while building the request: nothing was sent.
            return ProviderError(f"The request to {what} at {where} cannot be made ({type(exc).__name__}).")
        if fired or isinstance(exc, requests.Timeout):
            return ProviderTimeout(f"{what} at {where} did not answer in time ({timeout:g} s).")
        return ProviderUnavailable(f"{what} at {where} could not be reached ({type(exc).__name__}).")

    def _read_body(self, response: requests.Response, what: str) -> bytes:
        limit = self.max_reply_bytes
        too_large = ProviderError(
            f"{what} at {origin(response.url)} answered with more than {limit // 1024} KiB; the reply was not read.",
            status=response.status_code,
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)


# -- the deadline -----------------------------------------------------------------------------
#
# ``requests`` applies its timeout to each socket operation, so a reply that sends one byte
# just before each read times out never ends. The watchdog below shuts every socket the
# exchange opened when the deadline passes; the blocked read then returns, and the failure is
# reported as a timeout. The connections register themselves with the watchdog of the thread
# that uses them (the thread that called ``Transport.request``).

_current = threading.local()


class _Watchdog:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._outer = getattr(_current, "watchdog", None)
        _current.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _current.watchdog = self._outer

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.fired:
                _shut(sock)
            elif sock not in self._sockets:
                self._sockets.append(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _watch(sock: socket.socket | None) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:  # a pooled connection is reused without connect()
        _watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections report their sockets to the calling thread's watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


# -- the instance -------------------------------------------------------------------------------

_transport: Transport | None = None
_transport_lock = threading.Lock()


def get_transport() -> Transport:
    """The transport every provider request goes through (``BIGOAUTH["TRANSPORT"]``)."""
    global _transport
    if _transport is None:
        with _transport_lock:
            if _transport is None:
                _transport = _build()
    return _transport


def _build() -> Transport:
    path = bigoauth_settings.TRANSPORT
    try:
        cls = import_string(path) if isinstance(path, str) else path
    except ImportError as exc:
        raise ImproperlyConfigured(f"BIGOAUTH['TRANSPORT'] {path!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise ImproperlyConfigured(f"BIGOAUTH['TRANSPORT'] {path!r} is not a Transport subclass.")
    return cls()


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _transport
    if setting == "BIGOAUTH":
        _transport = None


setting_changed.connect(_reset, dispatch_uid="django_bigoauth.transport")
