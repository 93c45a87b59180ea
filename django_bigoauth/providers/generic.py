"""Standard servers from settings alone: a plain OAuth 2.0 server, or an OpenID Connect one.

No class to write. The registry picks one of these for an entry without ``CLASS`` (and whose
slug is not built in):

* ``ISSUER``: :class:`OpenIDConnectProvider`. Endpoints come from the issuer's discovery
  document (``discovery.py``), fetched on first use; ``AUTHORIZE_URL``, ``TOKEN_URL``,
  ``REVOKE_URL``, ``API_BASE_URL`` and ``IDENTITY_URL`` override what it says. Scopes
  ``openid offline_access`` (so ``prompt=consent`` is sent too), PKCE S256, a nonce, the ID
  token validated and its ``sub`` taken as the account's id.
* ``AUTHORIZE_URL`` and ``TOKEN_URL``: :class:`OAuth2Provider`. ``REVOKE_URL`` if the server
  has one (RFC 7009), ``IDENTITY_URL`` and ``IDENTITY_FIELD`` (default ``id``) to tell whose
  token it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from .. import discovery
from ..exceptions import CallbackError, ProviderError
from ..netloc import is_safe_endpoint
from .base import COMMON_SETTINGS_KEYS, CallbackContext, Identity, Provider

__all__ = ["ID_TOKEN_ALGORITHMS", "OAuth2Provider", "OpenIDConnectProvider"]

#: Signature algorithms accepted for ID tokens: asymmetric only. Never ``none``, never ``HS*``
#: (an HMAC keyed with the client secret proves nothing the secret's other holders could not forge).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
#: Fields of an identity reply tried, in order, for the account's label.
LABEL_FIELDS = ("name", "preferred_username", "username", "login", "email")


class OAuth2Provider(Provider):
    """A standard OAuth 2.0 server (RFC 6749, RFC 7636, RFC 7009) named by its endpoints in settings."""

    settings_keys = COMMON_SETTINGS_KEYS | {"IDENTITY_URL", "IDENTITY_FIELD"}
    #: RFC 9700 recommends PKCE for every client; a server that does not know it ignores it (RFC 6749 3.1).
    pkce = True
    #: the field of the identity reply that holds the account's id (``IDENTITY_FIELD``; dots walk into objects)
    identity_field = "id"

    @property
    def identity_field_path(self) -> list[str]:
        field = self.setting("IDENTITY_FIELD", self.identity_field)
        return str(field).split(".") if field else []

    def get_identity_url(self, api_domain: str = "") -> str:
        return self.setting("IDENTITY_URL", "")

    def endpoint_urls(self) -> dict[str, str]:
        urls = super().endpoint_urls()
        if self.setting("IDENTITY_URL"):
            urls["IDENTITY_URL"] = self.setting("IDENTITY_URL")
        return urls

    def configuration_errors(self) -> list[str]:
        errors = super().configuration_errors()
        if type(self) is OAuth2Provider:
            missing = [key for key in ("AUTHORIZE_URL", "TOKEN_URL") if not self.setting(key)]
            if len(missing) == 2:
                errors.append(
                    _("AUTHORIZE_URL and TOKEN_URL must be set (or ISSUER, for a server that publishes metadata).")
                )
            elif missing:
                errors.append(
                    _("%(key)s must be set (or ISSUER, for a server that publishes metadata).") % {"key": missing[0]}
                )
        field = self.setting("IDENTITY_FIELD")
        if field is not None and (not isinstance(field, str) or not field):
            errors.append(_("IDENTITY_FIELD must be the name of a field of the identity reply, such as 'id'."))
        return errors

    def parse_identity(self, data: Any) -> Identity | None:
        """The account's id from ``IDENTITY_FIELD`` (``a.b`` reads ``{"a": {"b": ...}}``), a label beside it."""
        value: Any = data
        owner: Any = data
        for part in self.identity_field_path:
            if not isinstance(value, Mapping):
                return None
            owner, value = value, value.get(part)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            return None
        label = ""
        if isinstance(owner, Mapping):
            label = next((str(owner[key]) for key in LABEL_FIELDS if isinstance(owner.get(key), (str, int))), "")
        return Identity(external_id=str(value), label=label)


class OpenIDConnectProvider(OAuth2Provider):
    """An OpenID Connect provider from its ``ISSUER``: discovery, ID tokens, RFC 9207."""

    settings_keys = OAuth2Provider.settings_keys | {"ISSUER"}
    default_scopes = ("openid", "offline_access")
    id_tokens = True
    identity_field = "sub"

    @property
    def issuer(self) -> str:
        return self.setting("ISSUER", "")

    def metadata(self) -> discovery.Metadata:
        """The issuer's checked metadata (cached); ``ProviderError``/``ProviderTimeout`` when it cannot be had."""
        if self.configuration_errors_of_issuer() or not is_safe_endpoint(self.issuer):
            raise ProviderError(f"{self.display_name}'s ISSUER is not a usable https:// URL; nothing was fetched.")
        return discovery.get_metadata(self.issuer, name=self.display_name)

    # -- endpoints: settings first, then the discovery document -------------------------

    def get_authorize_url(self) -> str:
        return self.setting("AUTHORIZE_URL") or self.metadata().authorization_endpoint

    def get_token_url(self, accounts_server: str = "") -> str:
        return self.setting("TOKEN_URL") or self.metadata().token_endpoint

    def get_revoke_url(self, accounts_server: str = "") -> str:
        return self.setting("REVOKE_URL") or self.metadata().revocation_endpoint

    @property
    def supports_revoke(self) -> bool:
        if self.setting("REVOKE_URL"):
            return True
        try:
            return bool(self.metadata().revocation_endpoint)
        except ProviderError:
            # Unknown for now: say yes, so that revoking is tried, fails visibly and can be retried,
            # rather than tokens being dropped here while the grant lives on at the provider.
            return True

    def get_api_base_url(self, api_domain: str = "") -> str:
        """``API_BASE_URL``, else the issuer: the server that issued the token may be sent it back."""
        return self.setting("API_BASE_URL") or self.issuer

    def get_identity_url(self, api_domain: str = "") -> str:
        """``IDENTITY_URL``, else the userinfo endpoint (used when a reply carries no ID token)."""
        return self.setting("IDENTITY_URL") or self.metadata().userinfo_endpoint

    def get_jwks_uri(self) -> str:
        return self.metadata().jwks_uri

    @property
    def id_token_algorithms(self) -> tuple[str, ...]:
        """What the issuer says it signs with, of what the app accepts (all of those when it says nothing)."""
        advertised = self.metadata().id_token_signing_alg_values_supported
        if not advertised:
            return ID_TOKEN_ALGORITHMS
        return tuple(alg for alg in ID_TOKEN_ALGORITHMS if alg in advertised)

    def endpoint_urls(self) -> dict[str, str]:
        # Configured values only: the system checks never fetch anything (see discovery_errors).
        urls = super().endpoint_urls()
        if self.issuer and not self.configuration_errors_of_issuer():  # else E006 says what is wrong
            urls = {"ISSUER": self.issuer, **urls}
        return urls

    # -- the callback: RFC 9207 ---------------------------------------------------------------

    def read_callback(self, params: Mapping[str, str]) -> CallbackContext:
        """Refuse a callback whose ``iss`` is not this provider's issuer (RFC 9207), before anything is sent.

        A server that says it always sends ``iss`` (``authorization_response_iss_parameter_supported``)
        must have sent it: a callback without one may come from another server (a mix-up attack).
        """
        iss = params.get("iss")
        if iss is not None:
            if iss != self.issuer:
                raise CallbackError(_("The sign-in came back from another server than the one it was sent to."))
        elif self.metadata().authorization_response_iss_parameter_supported:
            raise CallbackError(_("The sign-in came back without naming the server it came from."))
        return CallbackContext()

    # -- checks ---------------------------------------------------------------------------------

    def configuration_errors_of_issuer(self) -> list[str]:
        issuer = self.issuer
        if not isinstance(issuer, str) or not issuer:
            return [_("ISSUER must be the issuer's URL, such as 'https://login.example.com'.")]
        try:
            parts = urlsplit(issuer)
            parts.port  # noqa: B018 - raises ValueError on a port out of range
        except ValueError:
            parts = None
        # OpenID Connect Core section 2 and RFC 8414 section 2: a URL with no query or fragment.
        # (http:// off loopback is E007, as for every endpoint.)
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
            return [_("ISSUER %(issuer)r must be the issuer's https:// URL.") % {"issuer": issuer}]
        if parts.query or parts.fragment or parts.username or parts.password:
            return [_("ISSUER %(issuer)r must have no query, fragment or user name.") % {"issuer": issuer}]
        return []

    def configuration_errors(self) -> list[str]:
        return super().configuration_errors() + self.configuration_errors_of_issuer()

    def discovery_errors(self) -> list[str]:
        if self.configuration_errors_of_issuer():
            return []  # reported as a configuration error already
        try:
            self.metadata()
        except ProviderError as exc:
            return [str(exc)]
        return []
