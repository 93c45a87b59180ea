"""What every provider shares; a provider module states only what differs.

A provider class never touches the database and never sends HTTP itself: it knows endpoints,
parameters and reply shapes. ``client.py`` does the talking, ``tokens.py`` and ``linking.py``
the storing.

To add a provider, subclass :class:`Provider`, set the class attributes, override the hooks
whose default does not fit, and name the class in settings::

    BIGOAUTH = {"PROVIDERS": {"acme": {"CLASS": "myapp.providers.AcmeProvider", ...}}}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from ..exceptions import InvalidGrant, ProviderError, ProviderUnavailable
from ..redaction import mask

__all__ = ["CallbackContext", "Identity", "Provider", "TokenReply", "import_provider_class"]


@dataclasses.dataclass(frozen=True, repr=False)
class TokenReply:
    """A token endpoint's answer, read into one shape whatever the provider's dialect."""

    access_token: str
    refresh_token: str | None
    token_type: str
    expires_at: datetime | None
    scope: str = ""
    api_domain: str = ""

    def __repr__(self) -> str:
        return (
            f"TokenReply(access_token={mask(self.access_token)!r}, "
            f"refresh_token={mask(self.refresh_token)!r}, expires_at={self.expires_at!r})"
        )


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who the token belongs to at the provider: the account's external id and a label."""

    external_id: str
    label: str = ""


@dataclasses.dataclass(frozen=True)
class CallbackContext:
    """What the callback tells about where the account lives (Zoho's data centres)."""

    accounts_server: str = ""
    data_centre: str = ""


class Provider:
    """Base provider. Class attributes are defaults; settings override most of them."""

    #: human name, shown on buttons and in the admin
    name: ClassVar[str] = ""
    authorize_url: ClassVar[str] = ""
    token_url: ClassVar[str] = ""
    #: empty when the provider has no revoke endpoint (tokens are then only removed locally)
    revoke_url: ClassVar[str] = ""
    api_base_url: ClassVar[str] = ""
    default_scopes: ClassVar[tuple[str, ...]] = ()
    scope_separator: ClassVar[str] = " "
    pkce: ClassVar[bool] = False
    #: scheme before the token in the API ``Authorization`` header; "" sends the bare token
    auth_header_format: ClassVar[str] = "Bearer"
    #: API path (relative to the API base) that names the token's owner; "" when unknown
    identity_path: ClassVar[str] = ""
    #: ``error`` values meaning "this code or refresh token will never work again"
    invalid_grant_errors: ClassVar[frozenset[str]] = frozenset({"invalid_grant"})
    #: ``error`` values meaning "slow down, try later"
    throttle_errors: ClassVar[frozenset[str]] = frozenset({"slow_down", "temporarily_unavailable"})
    #: ``code``/``error`` values in an API's 401 body that mean "a scope is missing" (no refresh helps)
    scope_error_codes: ClassVar[frozenset[str]] = frozenset({"insufficient_scope"})

    def __init__(self, slug: str, config: Mapping[str, Any]):
        self.slug = slug
        self.config = dict(config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.slug!r}>"

    # -- settings --------------------------------------------------------------

    def setting(self, key: str, default: Any = None) -> Any:
        value = self.config.get(key)
        return default if value is None else value

    @property
    def display_name(self) -> str:
        return self.setting("NAME", self.name or self.slug.title())

    @property
    def client_id(self) -> str:
        return self.setting("CLIENT_ID", "")

    @property
    def client_secret(self) -> str:
        return self.setting("CLIENT_SECRET", "")

    @property
    def scopes(self) -> list[str]:
        return list(self.setting("SCOPES", self.default_scopes))

    @property
    def scope_string(self) -> str:
        return self.scope_separator.join(self.scopes)

    @property
    def uses_pkce(self) -> bool:
        return bool(self.setting("PKCE", self.pkce))

    @property
    def header_scheme(self) -> str:
        return self.setting("AUTH_HEADER_FORMAT", self.auth_header_format)

    def configuration_errors(self) -> list[str]:
        """Problems a system check should report, beyond the generic ones; override to add."""
        return []

    # -- endpoints ---------------------------------------------------------------
    # ``accounts_server`` is where an account lives for providers with several (Zoho);
    # others ignore it.

    def endpoint_urls(self) -> dict[str, str]:
        """Every configured endpoint, for the system checks."""
        return {
            key: url
            for key in ("AUTHORIZE_URL", "TOKEN_URL", "REVOKE_URL", "API_BASE_URL")
            if (url := self.setting(key, getattr(self, key.lower())))
        }

    def get_authorize_url(self) -> str:
        return self.setting("AUTHORIZE_URL", self.authorize_url)

    def get_token_url(self, accounts_server: str = "") -> str:
        return self.setting("TOKEN_URL", self.token_url)

    def get_revoke_url(self, accounts_server: str = "") -> str:
        return self.setting("REVOKE_URL", self.revoke_url)

    def get_api_base_url(self, api_domain: str = "") -> str:
        return self.setting("API_BASE_URL", self.api_base_url)

    @property
    def supports_revoke(self) -> bool:
        return bool(self.get_revoke_url())

    # -- the authorisation request -------------------------------------------------

    def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str = "") -> str:
        """The URL the browser is sent to (RFC 6749 section 4.1.1, RFC 7636 for PKCE)."""
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri}
        if self.scope_string:
            params["scope"] = self.scope_string
        params["state"] = state
        if code_challenge:
            params.update(code_challenge=code_challenge, code_challenge_method="S256")
        params.update(self.extra_authorization_params())
        url = self.get_authorize_url()
        return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"

    def extra_authorization_params(self) -> dict[str, str]:
        """Parameters beyond client_id, redirect_uri, response_type, scope and state."""
        return {}

    def read_callback(self, params: Mapping[str, str]) -> CallbackContext:
        """Check the callback's provider-specific parameters before any secret is sent.

        Raise :class:`~django_bigoauth.exceptions.CallbackError` to refuse it.
        """
        return CallbackContext()

    # -- the token endpoint ------------------------------------------------------------

    def extra_token_params(self, grant_type: str) -> dict[str, str]:
        """Form fields a provider wants on top of the standard ones."""
        return {}

    @sensitive_variables()
    def parse_token_reply(self, data: Mapping[str, Any], now: datetime) -> TokenReply:
        """Read a successful reply (one that carries ``access_token``)."""
        return TokenReply(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]) if data.get("refresh_token") else None,
            token_type=str(data.get("token_type") or "Bearer"),
            expires_at=self.read_expiry(data, now),
            scope=self.read_scope(data),
            api_domain=str(data.get("api_domain") or ""),
        )

    def read_expiry(self, data: Mapping[str, Any], now: datetime) -> datetime | None:
        seconds = data.get("expires_in")
        if seconds in (None, ""):
            return None
        return now + timedelta(seconds=_number(seconds, "expires_in"))

    def read_scope(self, data: Mapping[str, Any]) -> str:
        scope = data.get("scope") or ""
        if isinstance(scope, (list, tuple)):
            return self.scope_separator.join(str(item) for item in scope)
        return str(scope)

    def error_for(self, error_code: str, status: int) -> type[ProviderError]:
        """Which exception an ``error`` field in a token reply stands for."""
        if error_code in self.invalid_grant_errors:
            return InvalidGrant
        if error_code in self.throttle_errors:
            return ProviderUnavailable
        return ProviderError

    # -- the API ------------------------------------------------------------------------

    @sensitive_variables()
    def authorization_header(self, access_token: str) -> str:
        scheme = self.header_scheme
        return f"{scheme} {access_token}" if scheme else access_token

    def parse_identity(self, data: Any) -> Identity | None:
        """Read the answer of ``identity_path``; ``None`` when it names nobody."""
        return None

    def is_scope_error(self, headers: Mapping[str, str], data: Any) -> bool:
        """Whether an API's 401 says the token lacks a scope, which a refresh would not cure.

        The standard says so in ``WWW-Authenticate: Bearer error="insufficient_scope"``
        (RFC 6750 section 3.1); ``scope_error_codes`` adds codes a provider puts in its JSON
        body (``code`` or ``error``). ``data`` is the decoded body, or ``None``.
        """
        challenge = str(headers.get("WWW-Authenticate", ""))
        if 'error="insufficient_scope"' in challenge.replace(" ", ""):
            return True
        if isinstance(data, dict):
            return any(str(data.get(key)) in self.scope_error_codes for key in ("code", "error") if data.get(key))
        return False


def _number(value: Any, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProviderError(f"The token reply's {field!r} is not a number.") from None
    if number < 0 or number != number:
        raise ProviderError(f"The token reply's {field!r} is not a valid duration.")
    return number


def import_provider_class(path: str) -> type[Provider]:
    from django.utils.module_loading import import_string

    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"BIGOAUTH provider CLASS {path!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ImproperlyConfigured(f"BIGOAUTH provider CLASS {path!r} is not a Provider subclass.")
    return cls
