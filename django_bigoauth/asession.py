"""``LinkedAccount.asession()``: ``session()`` for async code, as an ``httpx.AsyncClient``.

::

    async with account.asession() as api:
        org = (await api.get("/bigin/v2/org")).json()

Everything it decides comes from ``session.SessionCore``, as for ``session()``: the header
scheme, relative paths against the API base, other origins and plain HTTP off loopback refused
before anything is sent, the token kept while fresh (N requests, one SQL query), and the 401
rules. The token travels as an ``httpx.Auth`` flow, so ``get``/``post``/``stream``/``send``
all carry it; httpx drops the header on a redirect to another origin, and a 401 from such a
target is handed back without a refresh. The hot path reads the token with Django's async
ORM; a refresh runs off the event loop (``tokens.arefresh_token_now``).

At most ``limits.max_connections`` requests (httpx's default: 100) are inside httpx at once;
the others wait here. httpcore's pool matches every queued request against every
connection each time a request starts or ends, so 200 requests gathered on 100 connections
spent about half their CPU there (encode/httpx#3215); admitted no faster than connections
free up, they never queue in the pool (measured in ``benchmarks/bench_async.py``).

Imported only by ``LinkedAccount.asession()``, after ``require_async_extra()``: httpx is the
``async`` extra.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

import httpx
from django.views.decorators.debug import sensitive_variables

from . import steps
from .conf import bigoauth_settings
from .session import ReadToken, Send, SessionCore

if TYPE_CHECKING:
    from .models import LinkedAccount
    from .tokens import CurrentToken

__all__ = ["AsyncAccountSession"]


class AsyncAccountSession(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that authenticates as one account, only towards its API.

    Keyword arguments go to ``httpx.AsyncClient``; ``timeout`` defaults to ``HTTP_TIMEOUT``
    and ``follow_redirects`` to ``True``, as with ``session()``. ``auth`` cannot be given.
    Requests beyond ``limits.max_connections`` wait for a free connection before entering
    httpx (not with a ``transport=`` of your own, whose limits are its own business).
    """

    def __init__(self, account: LinkedAccount, **kwargs: Any) -> None:
        if "auth" in kwargs:
            raise TypeError("asession() sends the account's token itself; it takes no auth=.")
        self.core = SessionCore(account)
        kwargs.setdefault("timeout", bigoauth_settings.HTTP_TIMEOUT)
        kwargs.setdefault("follow_redirects", True)
        self._admitted = _admission(kwargs)
        super().__init__(auth=_AccountAuth(self.core), **kwargs)

    def __repr__(self) -> str:
        return f"<AsyncAccountSession account={self.account.pk} base_url={self.core.base_url!r}>"

    @property
    def account(self) -> LinkedAccount:
        return self.core.account

    def resolve(self, url: str) -> str:
        """An absolute URL on the account's API origin; ``UnsafeURL`` for any other origin."""
        return self.core.resolve(url)

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        """httpx's request, for a URL resolved against the account's API base (others refused)."""
        resolved = self.core.resolve(str(url))
        try:
            return super().build_request(method, resolved, **kwargs)
        except (httpx.InvalidURL, ValueError, UnicodeError, TypeError) as exc:
            failure = type(exc).__name__
        # Raised outside the except block, as session() does: no __context__ quotes what failed.
        raise self.core.unbuildable(resolved, failure)

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        """httpx's ``send``, entered only when a connection is free (see the module's docstring).

        A streamed response keeps its place until it is closed, as it keeps its connection.
        """
        if self._admitted is None:
            return await super().send(request, stream=stream, **kwargs)
        await self._admitted.acquire()
        try:
            response = await super().send(request, stream=stream, **kwargs)
        except BaseException:
            self._admitted.release()
            raise
        if stream:
            assert isinstance(response.stream, httpx.AsyncByteStream)  # an async client's, always
            response.stream = _ReleasedOnClose(response.stream, self._admitted)
        else:
            self._admitted.release()
        return response


#: what ``httpx.AsyncClient`` uses when given no ``limits=`` (100 connections in httpx 0.28)
_HTTPX_DEFAULT_LIMITS: httpx.Limits = inspect.signature(httpx.AsyncClient).parameters["limits"].default


def _admission(client_kwargs: dict[str, Any]) -> asyncio.Semaphore | None:
    """One place per connection httpx's pool may open; None when it sets no bound, or is not httpx's."""
    if "transport" in client_kwargs or "mounts" in client_kwargs:
        return None
    limits = client_kwargs.get("limits", _HTTPX_DEFAULT_LIMITS)
    return asyncio.Semaphore(limits.max_connections) if limits.max_connections else None


class _ReleasedOnClose(httpx.AsyncByteStream):
    """A streamed response's body that gives its place back when it is closed.

    Once: ``httpx.Response.aclose()`` closes its stream only the first time it is called.
    """

    def __init__(self, stream: httpx.AsyncByteStream, admitted: asyncio.Semaphore) -> None:
        self._stream = stream
        self._admitted = admitted

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._admitted.release()


class _AccountAuth(httpx.Auth):
    """The token in the account's header, sent as ``SessionCore.call_steps`` says (retry after a 401 included)."""

    # A retry after a 401 sends the body again: httpx reads a streamed one before the first send.
    requires_request_body = True

    def __init__(self, core: SessionCore) -> None:
        self.core = core
        # Requests sent side by side wait for one read of the token (and its refresh, if stale).
        self._reading = asyncio.Lock()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("asession() is an async client; in sync code use account.session().")
        yield request  # pragma: no cover - makes this a generator, as httpx expects

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        call = steps.Steps(self.core.call_steps(str(request.url)))
        while (step := call.next_step()) is not None:
            try:
                if isinstance(step, Send):
                    response = yield self._authorised(request, step.token)
                    if response.status_code == 401:
                        await response.aread()  # the 401 rules read its body (a scope error?)
                    call.succeeded(response)
                elif isinstance(step, ReadToken):
                    async with self._reading:
                        call.succeeded(await steps.arun(self.core.token_steps()))
                else:
                    call.succeeded(await steps.ado(step))
            except Exception as exc:  # noqa: BLE001 - raised in the steps, where they yielded
                call.failed(exc)

    @sensitive_variables()
    def _authorised(self, request: httpx.Request, token: CurrentToken) -> httpx.Request:
        request.headers["Authorization"] = self.core.authorization(str(request.url), token.access_token)
        return request
