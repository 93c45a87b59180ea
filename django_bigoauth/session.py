"""``LinkedAccount.session()``: a requests session that is always authenticated, and only where it should be.

* The token is read once and kept (``tokens.current_token``): the session goes back to the
  database only when that token comes within the refresh leeway of its expiry, or after a
  401. N requests through one session on a fresh token cost one SQL query.
* It is sent in the provider's header scheme (``Zoho-oauthtoken``, ``Bearer``, or bare), and
  only ever to the account's API origin: relative paths are resolved against the API base, an
  absolute URL on another origin is refused (``UnsafeURL``), and plain HTTP only on loopback.
  The stored API domain is checked against what the provider allows before anything is sent.
* After a 401 the rules of ``policy.after_401`` decide: retry with a token another worker
  stored meanwhile, force one refresh and retry once, or hand the 401 back (a redirect's
  target, a missing scope, a token obtained moments ago).
* Errors ``requests`` raises while building a request (a header value it refuses, a URL it
  cannot parse) become ``UnsafeURL``/``BigOAuthError`` without their text, which quotes the
  header, and so the token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from requests_oauthlib import OAuth2Session

from . import policy, store
from .conf import bigoauth_settings
from .exceptions import BigOAuthError, UnsafeURL
from .netloc import is_safe_endpoint, origin

if TYPE_CHECKING:
    from .models import LinkedAccount
    from .tokens import CurrentToken

__all__ = ["AccountSession"]


class AccountSession(OAuth2Session):
    def __init__(self, account: LinkedAccount, **kwargs: Any):
        provider = account.provider_instance
        super().__init__(client_id=provider.client_id, scope=provider.scopes or None, **kwargs)
        self.account = account
        self.provider = provider
        try:
            base = provider.get_api_base_url(account.api_domain)
        except UnsafeURL as exc:
            raise UnsafeURL(f"Account {account.pk} ({account.provider}): {exc}") from None
        if not is_safe_endpoint(base):
            raise UnsafeURL(
                f"Account {account.pk} ({account.provider}): its API base {origin(base)!r} is not HTTPS; "
                "no token is sent there."
            )
        self.base_url = base.rstrip("/") + "/"
        self._token: CurrentToken | None = None

    def __repr__(self) -> str:
        return f"<AccountSession account={self.account.pk} base_url={self.base_url!r}>"

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
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        from .tokens import refresh_token_now

        url = self.resolve(url)
        kwargs.update(zip(_REQUEST_ARGS, args, strict=False))  # positional as requests.Session.request takes them
        kwargs.setdefault("timeout", bigoauth_settings.HTTP_TIMEOUT)
        token = self._current()
        response = self._send(method, url, token.access_token, **kwargs)
        if response.status_code != 401:
            return response
        state = store.read_claim_state(store.token_db(), self.account.pk)
        decision = policy.after_401(
            same_origin=origin(response.url or url) == origin(self.base_url),
            scope_error=self.provider.is_scope_error(response.headers, _json_or_none(response)),
            used_generation=token.generation,
            stored_generation=state.generation if state else None,
            used_obtained_at=token.obtained_at,
            now=timezone.now(),
            interval=float(bigoauth_settings.REFRESH_ON_401_INTERVAL),
        )
        if decision is policy.After401.RETURN:
            return response
        response.close()
        if decision is policy.After401.REFRESH:
            self._token = refresh_token_now(self.account, token.generation)
        else:
            self._token = None
        return self._send(method, url, self._current().access_token, **kwargs)

    def _current(self) -> CurrentToken:
        """The kept token while it is fresh; otherwise the stored one (refreshed if stale)."""
        from .tokens import current_token

        if self._token is None or self._token.is_stale(timezone.now()):
            self._token = current_token(self.account)
        return self._token

    @sensitive_variables()
    def _send(self, method: str, url: str, access_token: str, **kwargs: Any) -> requests.Response:
        if not is_safe_endpoint(url):
            raise UnsafeURL(
                f"Refusing to send a token to {origin(url) or 'that URL'!r}: plain HTTP is only allowed on loopback."
            )
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = self.provider.authorization_header(access_token)
        self.token = {"access_token": access_token, "token_type": self.provider.header_scheme or "Bearer"}
        send_kwargs = {name: kwargs.pop(name) for name in _SEND_KWARGS if name in kwargs}
        try:
            # Built as requests.Session.request builds it, so that a header requests refuses
            # (a token holding CR/LF or non-Latin-1 text) fails here, before anything is sent.
            prepared = self.prepare_request(requests.Request(method.upper(), url, headers=headers, **kwargs))
        except (ValueError, UnicodeError) as exc:  # InvalidHeader and InvalidURL are ValueErrors
            failure = type(exc).__name__
        else:
            failure = ""
        if failure:
            # Raised outside the except block: the original's text quotes the Authorization
            # header, and not even __context__ may keep it for an error report to find.
            raise BigOAuthError(
                f"The request to {origin(url)!r} for account {self.account.pk} cannot be made ({failure}); "
                "nothing was sent."
            )
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


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None
