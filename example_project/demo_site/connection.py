"""The demo's "Test connection": one API call through ``account.session()``, and what it did.

It shows the three things a person trying the demo wants to see: the API's answer, the token's
expiry before and after, and whether the call had to refresh the token first.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from urllib.parse import urlsplit

import requests
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


def api_url(account: LinkedAccount) -> str:
    """Which endpoint names the account: the provider's identity endpoint, "/" when it has none.

    Sandbox (and any OpenID Connect provider): userinfo; Biggerplate: ``/users/me``; Bigin:
    ``/bigin/v2/org``. The session sends the token there only if it is on the account's API origin.
    """
    return account.provider_instance.get_identity_url(account.api_domain) or "/"


def test_connection(account: LinkedAccount) -> ConnectionResult:
    result = ConnectionResult(account=account, path="/")
    before = _token_state(account)
    result.expires_before = before[0]
    try:
        url = api_url(account)
        result.path = urlsplit(url).path or "/"
        with account.session() as session:
            response = session.get(url, headers={"Accept": "application/json"})
    except ReauthorizationRequired:
        result.error = _("The provider no longer accepts this account's refresh token: connect it again.")
    except AccountRevoked:
        result.error = _("This account was disconnected.")
    except TokenDecryptionError:
        result.error = _("The stored token cannot be decrypted with the configured keys: connect the account again.")
    except (ProviderTimeout, requests.Timeout):
        result.error = _("The provider did not answer in time.")
    except RefreshError:
        result.error = _("The token was stale and refreshing it failed; the provider may be down. Try again later.")
    except (BigOAuthError, requests.RequestException):
        result.error = _("The provider could not be reached.")
    else:
        result.status = response.status_code
        result.body = _readable(response)
    after = _token_state(account)
    result.expires_after = after[0]
    result.refreshed = after[1] is not None and before[1] is not None and after[1] != before[1]
    return result


def _token_state(account: LinkedAccount) -> tuple[datetime | None, int | None]:
    row = Token.objects.filter(account_id=account.pk).values_list("expires_at", "generation").first()
    return row if row is not None else (None, None)


def _readable(response: requests.Response) -> str:
    try:
        text = json.dumps(response.json(), indent=2, ensure_ascii=False)
    except ValueError:
        text = response.text
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + "\n…"
