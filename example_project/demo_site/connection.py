"""The demo's "Test connection": one API call through ``account.session()`` (or ``asession()``), and what it did.

It shows the three things a person trying the demo wants to see: the API's answer, the token's
expiry before and after, and whether the call had to refresh the token first. ``atest_connection``
is the same check for async code, used by "Test all connections" to check every account at once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from django_bigoauth.exceptions import (
    AccountRevoked,
    BigOAuthError,
    ProviderTimeout,
    ReauthorizationRequired,
    RefreshError,
    TokenDecryptionError,
)
from django_bigoauth.models import LinkedAccount, Token

# Enough of an answer to recognise it; the rest is cut off.
MAX_BODY = 2000


@dataclasses.dataclass
class ConnectionResult:
    account: LinkedAccount
    path: str
    status: int | None = None
    body: str = ""
    error: str = ""
    expires_before: datetime | None = None
    expires_after: datetime | None = None
    refreshed: bool = False

    @property
    def ok(self) -> bool:
        return not self.error and self.status is not None and 200 <= self.status < 300

    def answered(self, response: requests.Response | httpx.Response) -> None:
        self.status = response.status_code
        self.body = _readable(response)

    def compared(
        self, before: tuple[datetime | None, int | None], after: tuple[datetime | None, int | None]
    ) -> ConnectionResult:
        """The token's expiry before and after the call; refreshed when its generation moved."""
        self.expires_before, self.expires_after = before[0], after[0]
        self.refreshed = after[1] is not None and before[1] is not None and after[1] != before[1]
        return self


def api_url(account: LinkedAccount) -> str:
    """Which endpoint names the account: the provider's identity endpoint, "/" when it has none.

    Sandbox (and any OpenID Connect provider): userinfo; Biggerplate: ``/users/me``; Bigin:
    ``/bigin/v2/org``. The session sends the token there only if it is on the account's API origin.
    """
    return account.provider_instance.get_identity_url(account.api_domain) or "/"


def test_connection(account: LinkedAccount) -> ConnectionResult:
    result, before = ConnectionResult(account=account, path="/"), _token_state(account)
    with _reporting(result), account.session() as session:
        url = api_url(account)
        result.path = urlsplit(url).path or "/"
        result.answered(session.get(url, headers={"Accept": "application/json"}))
    return result.compared(before, _token_state(account))


async def atest_connection(account: LinkedAccount) -> ConnectionResult:
    """``test_connection`` for async code: ``asession()``, and Django's async ORM for the expiry."""
    result, before = ConnectionResult(account=account, path="/"), await _atoken_state(account)
    with _reporting(result):
        url = api_url(account)
        result.path = urlsplit(url).path or "/"
        async with account.asession() as api:
            result.answered(await api.get(url, headers={"Accept": "application/json"}))
    return result.compared(before, await _atoken_state(account))


@contextmanager
def _reporting(result: ConnectionResult) -> Iterator[None]:
    """Turn what can go wrong in the call into a sentence for the page."""
    try:
        yield
    except (BigOAuthError, requests.RequestException, httpx.HTTPError) as exc:
        result.error = failure_message(exc)


def failure_message(exc: Exception) -> str:
    if isinstance(exc, ReauthorizationRequired):
        return _("The provider no longer accepts this account's refresh token: connect it again.")
    if isinstance(exc, AccountRevoked):
        return _("This account was disconnected.")
    if isinstance(exc, TokenDecryptionError):
        return _("The stored token cannot be decrypted with the configured keys: connect the account again.")
    if isinstance(exc, (ProviderTimeout, requests.Timeout, httpx.TimeoutException)):
        return _("The provider did not answer in time.")
    if isinstance(exc, RefreshError):
        return _("The token was stale and refreshing it failed; the provider may be down. Try again later.")
    return _("The provider could not be reached.")


def _token_row(account: LinkedAccount) -> QuerySet:
    return Token.objects.filter(account_id=account.pk).values_list("expires_at", "generation")


def _token_state(account: LinkedAccount) -> tuple[datetime | None, int | None]:
    return _token_row(account).first() or (None, None)


async def _atoken_state(account: LinkedAccount) -> tuple[datetime | None, int | None]:
    return await _token_row(account).afirst() or (None, None)


def _readable(response: Any) -> str:
    """The body of a requests or httpx response, pretty when it is JSON, cut short when long."""
    try:
        text = json.dumps(response.json(), indent=2, ensure_ascii=False)
    except ValueError:
        text = response.text
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + "\n…"
