"""``LinkedAccount.session()``: a requests session that is always authenticated, and only where it should be.

* The token is read once and kept (``tokens.current_steps``): the session goes back to the
  database only when that token comes within the refresh leeway of its expiry, or after a
  401. N requests through one session on a fresh token cost one SQL query.
* It is sent in the provider's header scheme (``Zoho-oauthtoken``, ``Bearer``, or bare), and
  only ever to the account's API origin: relative paths are resolved against the API base, an
  absolute URL on another origin is refused (``UnsafeURL``), and plain HTTP only on loopback.
  The stored API domain is checked against what the provider allows before anything is sent.
* After a 401 the rules of ``policy.after_401`` decide: retry with a token another worker
  stored meanwhile, force one refresh and retry once, or hand the 401 back (a redirect's
  target, a missing scope, a token obtained moments ago).
* Errors raised while building a request (a header value no client may send, a URL it cannot
  parse) become ``BigOAuthError`` without their text, which can quote the header, and so the
  token.

All of that is decided once, in :class:`SessionCore`, which ``session()`` (requests, here) and
``asession()`` (httpx, ``asession.py``) share: each only sends what the core's steps ask for.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from requests_oauthlib import OAuth2Session

from . import policy, steps, store, tokens
from .conf import bigoauth_settings
from .exceptions import BigOAuthError, UnsafeURL
from .netloc import is_safe_endpoint, origin

if TYPE_CHECKING:
    from .models import LinkedAccount
    from .providers import Provider
    from .tokens import CurrentToken

__all__ = ["AccountSession", "ReadToken", "Send", "SessionCore"]

#: An ``Authorization`` value every HTTP client sends as it is: printable ASCII words, one space
#: apart. A stored token outside it (written into the table by hand) would make requests or h11
#: refuse the header with an error that quotes it.
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


@dataclasses.dataclass(frozen=True)
class Send:
    """A session step: send the request with ``token``; the result is the response.

    ``replaces``: the 401 response this request retries, done with once it is sent again.
    """

    token: CurrentToken
    replaces: Any = None

    def __repr__(self) -> str:
        return f"<Send generation={self.token.generation} retry={self.replaces is not None}>"


@dataclasses.dataclass(frozen=True)
class ReadToken:
    """A session step: the token to send, from :meth:`SessionCore.token_steps`; the result is a ``CurrentToken``.

    A step of its own so that a client sending requests side by side (``asession()`` with
    ``asyncio.gather``) reads the token for all of them once, not once each.
    """


class SessionCore:
    """What an API session of one account decides, for ``session()`` and ``asession()`` alike. No I/O.

    The API base (checked here, before anything is sent), where a URL may go, the header that
    carries the token, the token the session keeps, and the steps of one call (:meth:`call_steps`).
    """

    def __init__(self, account: LinkedAccount) -> None:
        provider = account.provider_instance
        try:
            base = provider.get_api_base_url(account.api_domain)
        except UnsafeURL as exc:
            raise UnsafeURL(f"Account {account.pk} ({account.provider}): {exc}") from None
        if not is_safe_endpoint(base):
            raise UnsafeURL(
                f"Account {account.pk} ({account.provider}): its API base {origin(base)!r} is not HTTPS; "
                "no token is sent there."
            )
        self.account = account
        self.provider: Provider = provider
        self.base_url = base.rstrip("/") + "/"
        #: the token the session read last; kept while it is fresh
        self.token: CurrentToken | None = None

    def __repr__(self) -> str:
        return f"<SessionCore account={self.account.pk} base_url={self.base_url!r}>"

    def resolve(self, url: str) -> str:
        """An absolute URL on the account's API origin; ``UnsafeURL`` for any other origin."""
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc:
            return urljoin(self.base_url, url.lstrip("/"))
        if origin(url) != origin(self.base_url):
            raise UnsafeURL(
                f"Refusing to send account {self.account.pk}'s token to {origin(url) or 'that URL'!r}: "
                f"its API is at {origin(self.base_url)!r}."
            )
        return url

    @sensitive_variables()
    def authorization(self, url: str, access_token: str) -> str:
        """The ``Authorization`` value for a request to ``url``; raises rather than send it anywhere else."""
        self.resolve(url)  # the origin, again: a request may have been built by hand
        if not is_safe_endpoint(url):
            raise UnsafeURL(
                f"Refusing to send a token to {origin(url) or 'that URL'!r}: plain HTTP is only allowed on loopback."
            )
        value = self.provider.authorization_header(access_token)
        if not _HEADER_VALUE.fullmatch(value):
            raise self.unbuildable(url, "InvalidHeader")
        return value

    def unbuildable(self, url: str, failure: str) -> BigOAuthError:
        """The error for a request that cannot be built; ``failure`` names the kind, never the value."""
        return BigOAuthError(
            f"The request to {origin(url)!r} for account {self.account.pk} cannot be made ({failure}); "
            "nothing was sent."
        )

    def call_steps(self, url: str) -> steps.StepGenerator[Any]:
        """One API call: the kept token, one send, and after a 401 at most one more (``policy.after_401``)."""
        token = yield ReadToken()
        response = yield Send(token)
        if response.status_code != 401:
            return response
        state = store.claim_state((yield steps.Fetch(store.claim_state_query(store.token_db(), self.account.pk))))
        decision = policy.after_401(
            same_origin=origin(str(response.url or url)) == origin(self.base_url),
            scope_error=self.provider.is_scope_error(response.headers, _json_or_none(response)),
            used_generation=token.generation,
            stored_generation=state.generation if state else None,
            used_obtained_at=token.obtained_at,
            now=timezone.now(),
            interval=float(bigoauth_settings.REFRESH_ON_401_INTERVAL),
        )
        if decision is policy.After401.RETURN:
            return response
        if decision is policy.After401.REFRESH:
            self.token = yield steps.Refresh(self.account, token.generation)
        elif self.token is not None and self.token.generation == token.generation:
            self.token = None  # another worker stored a newer token: read it
        token = yield ReadToken()
        return (yield Send(token, replaces=response))

    def token_steps(self) -> steps.StepGenerator[CurrentToken]:
        """The kept token while it is fresh; otherwise the stored one (refreshed if stale)."""
        if self.token is None or self.token.is_stale(timezone.now()):
            self.token = yield from tokens.current_steps(self.account)
        return self.token


class AccountSession(OAuth2Session):
    """A ``requests`` session (requests-oauthlib's ``OAuth2Session``) that authenticates as one account.

    Made by :meth:`LinkedAccount.session() <django_bigoauth.models.LinkedAccount.session>`:
    relative URLs are resolved against the account's API base, the token is read once and
    refreshed when stale or after a 401 that a refresh can cure, and a token is never sent to
    another origin. Keyword arguments go to ``OAuth2Session``.
    """

    def __init__(self, account: LinkedAccount, **kwargs: Any):
        core = SessionCore(account)
        super().__init__(client_id=core.provider.client_id, scope=core.provider.scopes or None, **kwargs)
        self.core = core
        self.account = account
        self.provider = core.provider
        self.base_url = core.base_url

    def __repr__(self) -> str:
        return f"<AccountSession account={self.account.pk} base_url={self.base_url!r}>"

    def resolve(self, url: str) -> str:
        """An absolute URL on the account's API origin; ``UnsafeURL`` for any other origin."""
        return self.core.resolve(url)

    @sensitive_variables()
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = self.core.resolve(url)
        kwargs.update(zip(_REQUEST_ARGS, args, strict=False))  # positional as requests.Session.request takes them
        kwargs.setdefault("timeout", bigoauth_settings.HTTP_TIMEOUT)

        def perform(step: Any) -> Any:
            if isinstance(step, ReadToken):
                return steps.run(self.core.token_steps())
            if not isinstance(step, Send):
                return steps.do(step)
            if step.replaces is not None:
                step.replaces.close()
            return self._send(method, url, step.token.access_token, **kwargs)

        return steps.run(self.core.call_steps(url), perform)

    @sensitive_variables()
    def _send(self, method: str, url: str, access_token: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = self.core.authorization(url, access_token)
        self.token = {"access_token": access_token, "token_type": self.provider.header_scheme or "Bearer"}
        send_kwargs = {name: kwargs.pop(name) for name in _SEND_KWARGS if name in kwargs}
        try:
            # Built as requests.Session.request builds it, so that a request requests refuses
            # (a URL it cannot parse, a header of the caller's) fails here, before anything is sent.
            prepared = self.prepare_request(requests.Request(method.upper(), url, headers=headers, **kwargs))
        except (ValueError, UnicodeError) as exc:  # InvalidHeader and InvalidURL are ValueErrors
            failure = type(exc).__name__
        else:
            failure = ""
        if failure:
            # Raised outside the except block: the original's text may quote a header, and not
            # even __context__ may keep it for an error report to find.
            raise self.core.unbuildable(url, failure)
        settings = self.merge_environment_settings(
            prepared.url,
            send_kwargs.pop("proxies", None) or {},
            send_kwargs.pop("stream", None),
            send_kwargs.pop("verify", None),
            send_kwargs.pop("cert", None),
        )
        send_kwargs.setdefault("allow_redirects", True)
        # requests.Session.send, not OAuth2Session's: oauthlib only knows Bearer tokens.
        return super(OAuth2Session, self).send(prepared, **send_kwargs, **settings)


#: ``requests.Session.request``'s parameters after the URL, in order.
_REQUEST_ARGS = (
    "params",
    "data",
    "headers",
    "cookies",
    "files",
    "auth",
    "timeout",
    "allow_redirects",
    "proxies",
    "hooks",
    "stream",
    "verify",
    "cert",
    "json",
)
#: Keyword arguments of ``requests.Session.request`` that belong to sending, not to the request.
_SEND_KWARGS = ("timeout", "allow_redirects", "proxies", "stream", "verify", "cert")


def _json_or_none(response: Any) -> Any:
    """The body of a requests or httpx response as JSON, or ``None``."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None
