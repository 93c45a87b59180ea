"""All HTTP to a provider's token, revoke and identity endpoints.

One place sets the timeout, puts client credentials in the form body (never the query
string, never HTTP Basic), refuses plain HTTP off loopback, and turns every way a provider
can fail into one exception of ``exceptions.py``. Callers never see ``requests`` errors.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .conf import bigoauth_settings
from .exceptions import InvalidGrant, ProviderError, ProviderTimeout, ProviderUnavailable
from .netloc import is_safe_endpoint
from .providers import Identity, Provider, TokenReply

logger = logging.getLogger("django_bigoauth")

USER_AGENT = "django_bigoauth"


@sensitive_variables()
def exchange_code(
    provider: Provider,
    code: str,
    *,
    redirect_uri: str | None,
    code_verifier: str | None = None,
    accounts_server: str = "",
) -> TokenReply:
    """Trade an authorisation code for tokens. ``redirect_uri=None`` for a Zoho self client."""
    form = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    if code_verifier:
        form["code_verifier"] = code_verifier
    return _token_request(provider, form, accounts_server)


@sensitive_variables()
def refresh(provider: Provider, refresh_token: str, *, accounts_server: str = "") -> TokenReply:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return _token_request(provider, form, accounts_server)


@sensitive_variables()
def revoke(provider: Provider, token: str, *, accounts_server: str = "") -> None:
    """Ask the provider to revoke ``token``; raises ``ProviderError`` unless it confirms.

    ``InvalidGrant`` means the provider no longer knows the token: nothing is left to revoke.
    """
    url = provider.get_revoke_url(accounts_server)
    form = {"token": token, "client_id": provider.client_id, "client_secret": provider.client_secret}
    response = _post(url, form)
    status, name = response.status_code, provider.display_name
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"{name} answered HTTP {status} to the revoke request.", status=status)
    data = _json_or_none(response)
    if isinstance(data, dict) and data.get("error"):
        error_code = _code(data["error"])
        # A token the provider no longer knows is as revoked as it gets (RFC 7009 section 2.2).
        dead = error_code == "invalid_token" or provider.error_for(error_code, status) is InvalidGrant
        exc_class = InvalidGrant if dead else ProviderError
        raise exc_class(f"{name} refused the revoke request ({error_code}).", status=status, error_code=error_code)
    if status >= 400:
        raise ProviderError(f"{name} answered HTTP {status} to the revoke request.", status=status)
    if isinstance(data, dict) and data.get("status") not in (None, "success"):
        raise ProviderError(f"{name} did not confirm the revocation.", status=status)


@sensitive_variables()
def fetch_identity(provider: Provider, access_token: str, *, api_domain: str = "") -> Identity | None:
    """Ask the provider's API who the token belongs to; ``None`` when its answer names nobody.

    Two kinds of failure, because they mean different things to the caller (``linking``):

    * the provider could not be asked: a timeout (``ProviderTimeout``), no connection, HTTP 5xx
      or 429 (``ProviderUnavailable``). Asking again later would tell, so the caller must not
      guess in the meantime.
    * the provider answered and named nobody: HTTP 401/403 (Zoho's ``OAUTH_SCOPE_MISMATCH``
      without ``ZohoBigin.org.READ``) or another 4xx, a 200 that ``parse_identity`` cannot
      read, or a ``parse_identity`` that raises (a custom provider reading ``data["id"]``).
      Logged as a WARNING with the provider and the HTTP status, never the reply or the token.
    """
    if not provider.identity_path:
        return None
    url = provider.get_api_base_url(api_domain).rstrip("/") + provider.identity_path
    if not _is_safe_url(url):
        raise ProviderError(f"Refusing to send a token to {url!r}: plain HTTP is only allowed on loopback.")
    name = provider.display_name
    try:
        response = requests.get(
            url,
            headers={
                "Authorization": provider.authorization_header(access_token),
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=bigoauth_settings.HTTP_TIMEOUT,
        )
    except requests.Timeout:
        raise ProviderTimeout(f"{name}'s identity endpoint did not answer in time.") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, UnicodeError):
        # Nothing was sent: the URL or the token cannot go into a request at all.
        raise ProviderError(f"The request to {name}'s identity endpoint cannot be made.") from None
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{name}'s identity endpoint could not be reached ({type(exc).__name__}).") from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"{name}'s identity endpoint answered HTTP {status}.", status=status)
    if status != 200:
        _names_nobody(provider, status, "")
        return None
    try:
        identity = provider.parse_identity(_json_or_none(response))
    except ProviderError:
        raise  # the provider class says the reply is unusable: that is an answer too
    except Exception as exc:  # noqa: BLE001 - a provider class's bug must not become a 500
        _names_nobody(provider, status, f", which could not be read ({type(exc).__name__})")
        return None
    identity = _usable_identity(identity)
    if identity is None:
        _names_nobody(provider, status, ", which names nobody")
    return identity


def _names_nobody(provider: Provider, status: int, detail: str) -> None:
    logger.warning(
        "Could not tell whose %s token this is: its identity endpoint answered HTTP %s%s",
        provider.slug,
        status,
        detail,
    )


def _usable_identity(identity: Any) -> Identity | None:
    """``identity`` with string fields, or ``None`` when it is not one or has no external id."""
    if not isinstance(identity, Identity) or identity.external_id in (None, ""):
        return None
    if isinstance(identity.external_id, str) and isinstance(identity.label, str):
        return identity
    return Identity(external_id=str(identity.external_id), label="" if identity.label is None else str(identity.label))


def _is_safe_url(url: str) -> bool:
    try:
        return is_safe_endpoint(url)
    except ValueError:  # not a URL at all ("https://[::1")
        return False


# -- internals ----------------------------------------------------------------------------


@sensitive_variables()
def _token_request(provider: Provider, form: dict[str, str], accounts_server: str) -> TokenReply:
    grant_type = form["grant_type"]
    body = {
        **form,
        **provider.extra_token_params(grant_type),
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    url = provider.get_token_url(accounts_server)
    response = _post(url, body)
    return read_token_response(provider, response)


def read_token_response(provider: Provider, response: requests.Response) -> TokenReply:
    """A token reply, or the exception it stands for.

    Zoho answers errors with HTTP 200 and an ``error`` field, so a reply without
    ``access_token`` is an error whatever its status.
    """
    status = response.status_code
    name = provider.display_name
    data = _json_or_none(response)
    error_code = _code(data.get("error")) if isinstance(data, dict) and data.get("error") else ""
    if error_code:
        exc_class = provider.error_for(error_code, status)
        if status == 429 or status >= 500:
            exc_class = ProviderUnavailable
        raise exc_class(f"{name} refused the token request ({error_code}).", status=status, error_code=error_code)
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"{name}'s token endpoint answered HTTP {status}.", status=status)
    if data is None:
        raise ProviderError(
            f"{name}'s token endpoint answered HTTP {status} with something that is not JSON.", status=status
        )
    if status >= 400:
        raise ProviderError(f"{name}'s token endpoint answered HTTP {status}.", status=status)
    if not isinstance(data, dict) or not data.get("access_token"):
        raise ProviderError(f"{name}'s token reply has no access token.", status=status)
    try:
        return provider.parse_token_reply(data, timezone.now())
    except (TypeError, ValueError, OverflowError, KeyError) as exc:
        raise ProviderError(f"{name}'s token reply cannot be read ({type(exc).__name__}).", status=status) from None


@sensitive_variables()
def _post(url: str, form: dict[str, str]) -> requests.Response:
    if not is_safe_endpoint(url):
        raise ProviderError(f"Refusing to send credentials to {url!r}: plain HTTP is only allowed on loopback.")
    try:
        return requests.post(
            url,
            data=form,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=bigoauth_settings.HTTP_TIMEOUT,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise ProviderTimeout("The provider did not answer in time.") from None
    except requests.RequestException as exc:
        # The exception text can hold the request URL; only its type leaves this module.
        raise ProviderUnavailable(f"The provider could not be reached ({type(exc).__name__}).") from None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def _code(value: Any) -> str:
    """An ``error`` value fit for a message: short, one line."""
    return str(value).replace("\n", " ")[:80]
