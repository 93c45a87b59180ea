"""What every provider shares; a provider module states only what differs.

A provider class never touches the database and never sends HTTP itself: it knows endpoints,
parameters and reply shapes. ``client.py`` does the talking, ``tokens.py`` and ``linking.py``
the storing. (Endpoints a provider must discover, OpenID Connect's, come from ``discovery.py``,
which fetches and caches them through the one transport.)

A provider **declares** what it accepts and what it can do, so that the rest of the app asks it
instead of testing its class:

* :attr:`Provider.settings_keys`: the keys its settings entry may hold (the unknown-key check
  W002 reads this);
* capabilities: :attr:`~Provider.supports_revoke`, :attr:`~Provider.supports_self_client`
  (codes made in a provider's console, exchanged without a redirect), :attr:`~Provider.id_tokens`
  (validates OpenID Connect ID tokens and reads the account's identity from them),
  :attr:`~Provider.identity_scopes` (scopes without which the owner cannot be read).

To add a provider, subclass :class:`Provider`, set the class attributes, override the hooks
whose default does not fit, and name the class in settings::

    BIGOAUTH = {"PROVIDERS": {"acme": {"CLASS": "myapp.providers.AcmeProvider", ...}}}

A standard server needs no class at all: an entry with ``ISSUER`` is an OpenID Connect provider,
one with ``AUTHORIZE_URL`` and ``TOKEN_URL`` a plain OAuth 2.0 one (``providers/generic.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from ..exceptions import InvalidGrant, ProviderError, ProviderUnavailable, SelfClientError
from ..redaction import mask

#: Authorisation-request parameters the app sets itself; ``EXTRA_AUTHORIZE_PARAMS`` cannot change them
#: (system check E013), because the flow's security rests on them.
RESERVED_AUTHORIZE_PARAMS = frozenset(
    {"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "nonce"}
)

#: Settings keys every provider accepts.
COMMON_SETTINGS_KEYS = frozenset(
    {
        "CLASS",
        "NAME",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "SCOPES",
        "REDIRECT_URI",
        "PKCE",
        "AUTH_HEADER_FORMAT",
        "AUTHORIZE_URL",
        "TOKEN_URL",
        "REVOKE_URL",
        "API_BASE_URL",
        "EXTRA_AUTHORIZE_PARAMS",
    }
)

__all__ = [
    "COMMON_SETTINGS_KEYS",
    "RESERVED_AUTHORIZE_PARAMS",
    "CallbackContext",
    "Identity",
    "Provider",
    "TokenReply",
    "import_provider_class",
]


@dataclasses.dataclass(frozen=True, repr=False)
class TokenReply:
    """A token endpoint's answer, read into one shape whatever the provider's dialect."""

    access_token: str
    refresh_token: str | None
    token_type: str
    expires_at: datetime | None
    scope: str = ""
    api_domain: str = ""
    #: the OpenID Connect ID token as received (a JWT), "" when the reply carried none
    id_token: str = ""
    #: the ID token's claims, once ``idtoken.validate_id_token`` has checked it; never before
    id_claims: Mapping[str, Any] | None = None

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

    #: the keys a settings entry for this provider may hold; subclasses add theirs
    settings_keys: ClassVar[frozenset[str]] = COMMON_SETTINGS_KEYS
    #: codes made in the provider's own console ("self client") can be exchanged without a redirect
    supports_self_client: ClassVar[bool] = False
    #: validates OpenID Connect ID tokens in code-exchange replies and reads the identity from them
    id_tokens: ClassVar[bool] = False
    #: scopes, any one of which lets ``identity_path`` name the account; empty: no scope is needed
    identity_scopes: ClassVar[frozenset[str]] = frozenset()
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

    @property
    def extra_authorize_params(self) -> dict[str, str]:
        """``EXTRA_AUTHORIZE_PARAMS``, without the parameters the app sets itself (see E013)."""
        extra = self.setting("EXTRA_AUTHORIZE_PARAMS", {})
        if not isinstance(extra, Mapping):
            return {}
        return {str(k): str(v) for k, v in extra.items() if k not in RESERVED_AUTHORIZE_PARAMS}

    @property
    def uses_nonce(self) -> bool:
        """Whether the authorisation request carries an OpenID Connect ``nonce`` (kept with the state)."""
        return self.id_tokens and "openid" in self.scopes

    @classmethod
    def settings_type_errors(cls, entry: Mapping[str, Any]) -> list[str]:
        """Values of the wrong type in a settings entry, found before the provider is built (E001).

        Override to add a provider's own keys; the provider would fail reading them otherwise.
        """
        return []

    def configuration_errors(self) -> list[str]:
        """Problems a system check should report, beyond the generic ones; override to add."""
        return []

    def self_client_context(
        self, *, accounts_server: str | None = None, data_centre: str | None = None
    ) -> CallbackContext:
        """Where a self-client code is exchanged (``supports_self_client`` providers only).

        ``accounts_server`` and ``data_centre`` are what the operator asked for; raise
        ``SelfClientError`` with a message for them when it cannot be done.
        """
        raise SelfClientError(_("%(provider)s has no self-client codes.") % {"provider": self.display_name})

    def discovery_errors(self) -> list[str]:
        """Problems only a request to the provider can show (``check --deploy``, W004); no HTTP by default."""
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

    def get_identity_url(self, api_domain: str = "") -> str:
        """Where to ask whose token this is: ``identity_path`` on the API; "" when unknown."""
        if not self.identity_path:
            return ""
        return self.get_api_base_url(api_domain).rstrip("/") + self.identity_path

    @property
    def supports_revoke(self) -> bool:
        """Whether the provider has a revoke endpoint; otherwise tokens are only removed locally."""
        return bool(self.get_revoke_url())

    # -- OpenID Connect (``id_tokens`` providers) ------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer ID tokens and RFC 9207 callbacks must name; "" when the provider has none."""
        return ""

    def get_jwks_uri(self) -> str:
        """Where the keys that sign ID tokens are published."""
        return ""

    @property
    def id_token_algorithms(self) -> tuple[str, ...]:
        """The JWS algorithms an ID token may be signed with."""
        return ()

    # -- the authorisation request -------------------------------------------------

    @sensitive_variables("state", "nonce", "params")
    def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str = "", nonce: str = "") -> str:
        """The URL the browser is sent to (RFC 6749 section 4.1.1, RFC 7636 for PKCE, OpenID Connect's nonce).

        On top of the standard parameters: the provider's :meth:`extra_authorization_params`,
        ``prompt=consent`` when ``offline_access`` is asked for (OpenID Connect Core section 11:
        servers drop ``offline_access``, and issue no refresh token, without it), then the
        site's ``EXTRA_AUTHORIZE_PARAMS``, which may change anything but the reserved parameters.
        """
        url = self.get_authorize_url()  # first: it may need discovery, which may fail
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri}
        if self.scope_string:
            params["scope"] = self.scope_string
        params["state"] = state
        if code_challenge:
            params.update(code_challenge=code_challenge, code_challenge_method="S256")
        if nonce:
            params["nonce"] = nonce
        extra = self.extra_authorization_params()
        if "offline_access" in self.scopes and "prompt" not in extra:
            extra["prompt"] = "consent"
        extra.update(self.extra_authorize_params)
        params.update({key: value for key, value in extra.items() if key not in RESERVED_AUTHORIZE_PARAMS})
        return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"

    def extra_authorization_params(self) -> dict[str, str]:
        """Parameters beyond client_id, redirect_uri, response_type, scope, state, PKCE and nonce."""
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
            id_token=str(data["id_token"]) if self.id_tokens and data.get("id_token") else "",
        )

    def read_expiry(self, data: Mapping[str, Any], now: datetime) -> datetime | None:
        """When the token in ``data`` expires (``expires_in`` seconds from ``now``); ``None`` when unknown."""
        seconds = data.get("expires_in")
        if seconds in (None, ""):
            return None
        return now + timedelta(seconds=_number(seconds, "expires_in"))

    def read_scope(self, data: Mapping[str, Any]) -> str:
        """The granted scopes of ``data`` as one string, joined by ``scope_separator`` if sent as a list."""
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
        """The API's ``Authorization`` header value: ``AUTH_HEADER_FORMAT``'s scheme and the token."""
        scheme = self.header_scheme
        return f"{scheme} {access_token}" if scheme else access_token

    def parse_identity(self, data: Any) -> Identity | None:
        """Read the answer of the identity endpoint; ``None`` when it names nobody."""
        return None

    def identity_from_id_token(self, claims: Mapping[str, Any]) -> Identity | None:
        """The account an ID token's (validated) claims name: ``sub``, labelled by ``email`` or ``name``."""
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            return None
        label = next((claims[key] for key in ("email", "name", "preferred_username") if claims.get(key)), "")
        return Identity(external_id=sub, label=str(label))

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
