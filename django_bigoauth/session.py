"""``LinkedAccount.session()``: a requests-oauthlib session that is always authenticated.

Each request takes the token through ``tokens.get_access_token`` (so a stale token is
refreshed first, under the same lock as everywhere else), sends it in the provider's header
scheme (``Zoho-oauthtoken``, ``Bearer``, or bare), resolves relative paths against the
account's API base, and on a 401 forces one refresh and retries once.

The token only ever goes to the account's API origin: an absolute URL on another host is
refused rather than handed a bearer token (requests itself drops the header on a redirect
to another host).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from django.views.decorators.debug import sensitive_variables
from requests_oauthlib import OAuth2Session

from .conf import bigoauth_settings
from .exceptions import UnsafeURL
from .netloc import is_safe_endpoint, origin

if TYPE_CHECKING:
    import requests

    from .models import LinkedAccount


class AccountSession(OAuth2Session):
    def __init__(self, account: LinkedAccount, **kwargs: Any):
        provider = account.provider_instance
        super().__init__(client_id=provider.client_id, scope=provider.scopes or None, **kwargs)
        self.account = account
        self.provider = provider
        self.base_url = account.api_base_url.rstrip("/") + "/"

    def __repr__(self) -> str:
        return f"<AccountSession account={self.account.pk} base_url={self.base_url!r}>"

    def resolve(self, url: str) -> str:
        """An absolute URL on the account's API origin; ``UnsafeURL`` for any other host."""
        if "://" not in url:
            return urljoin(self.base_url, url.lstrip("/"))
        if origin(url) != origin(self.base_url):
            raise UnsafeURL(
                f"Refusing to send account {self.account.pk}'s token to {origin(url)!r}: "
                f"its API is at {origin(self.base_url)!r}."
            )
        return url

    @sensitive_variables()
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        from .tokens import current_token, refresh_access_token

        url = self.resolve(url)
        if not is_safe_endpoint(url):
            raise UnsafeURL(f"Refusing to send a token to {url!r}: plain HTTP is only allowed on loopback.")
        kwargs.setdefault("timeout", bigoauth_settings.HTTP_TIMEOUT)
        access_token, generation = current_token(self.account)
        response = self._send(method, url, access_token, *args, **kwargs)
        if response.status_code != 401:
            return response
        # The token may have been revoked or expired early: one forced refresh, one retry. The
        # generation of the token that was refused lets a worker that finds a newer token
        # (another worker already refreshed) use it instead of refreshing again.
        response.close()
        access_token = refresh_access_token(self.account, force=True, seen_generation=generation)
        return self._send(method, url, access_token, *args, **kwargs)

    @sensitive_variables()
    def _send(self, method: str, url: str, access_token: str, *args: Any, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = self.provider.authorization_header(access_token)
        self.token = {"access_token": access_token, "token_type": self.provider.header_scheme or "Bearer"}
        # requests.Session.request, not OAuth2Session.request: oauthlib only knows Bearer tokens.
        return super(OAuth2Session, self).request(method, url, *args, headers=headers, **kwargs)
