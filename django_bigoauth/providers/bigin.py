"""Bigin by Zoho: Zoho Accounts OAuth 2.0, spread over several data centres."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from ..exceptions import AccountsServerNotAllowed, CallbackError, SelfClientError, UnsafeURL
from ..netloc import origin
from .base import COMMON_SETTINGS_KEYS, CallbackContext, Identity, Provider, _number

__all__ = ["DATA_CENTRES", "DEFAULT_DATA_CENTRE", "BiginProvider"]

# data centre -> (accounts server, API domain); ACCOUNTS_SERVERS replaces the first column.
DATA_CENTRES: dict[str, tuple[str, str]] = {
    "us": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "au": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "cn": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    # Bigin's API domain for the UK is unconfirmed; the token reply's api_domain decides.
    "uk": ("https://accounts.zoho.uk", "https://www.zohoapis.uk"),
}

DEFAULT_DATA_CENTRE = "us"


class BiginProvider(Provider):
    name = "Bigin"
    # Zoho's notions (data centres, accounts servers, API domains) live here, not in the base.
    settings_keys = COMMON_SETTINGS_KEYS | {"DATA_CENTRE", "ACCOUNTS_SERVERS", "API_DOMAINS"}
    # Zoho's API console makes "self client" codes, exchanged at a data centre without a redirect.
    supports_self_client = True
    default_scopes = ("ZohoBigin.modules.ALL", "ZohoBigin.org.READ")
    scope_separator = ","
    auth_header_format = "Zoho-oauthtoken"
    identity_path = "/bigin/v2/org"
    # Zoho answers a used, expired or revoked code or refresh token with invalid_code.
    invalid_grant_errors = frozenset({"invalid_grant", "invalid_code"})
    # Zoho's throttle reply: {"error": "Access Denied", ...}, with HTTP 200 or 400.
    throttle_errors = frozenset({"Access Denied", "slow_down", "temporarily_unavailable"})
    # Zoho's API answers 401 {"code": "OAUTH_SCOPE_MISMATCH"} to a token without the scope.
    scope_error_codes = frozenset({"OAUTH_SCOPE_MISMATCH", "insufficient_scope"})
    #: scopes that let ``identity_path`` read the organisation (compared case-sensitively, as Zoho does)
    identity_scopes = frozenset({"ZohoBigin.org.READ", "ZohoBigin.org.ALL"})
    org_read_scopes = identity_scopes

    @property
    def reads_organisation(self) -> bool:
        """Whether the scopes asked for let the organisation, the account's external id, be read."""
        return not self.org_read_scopes.isdisjoint(self.scopes)

    @classmethod
    def settings_type_errors(cls, entry: Mapping[str, Any]) -> list[str]:
        errors = []
        for key in ("ACCOUNTS_SERVERS", "API_DOMAINS"):
            value = entry.get(key)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            ):
                errors.append(_("%(key)s must be a dict of data-centre code -> URL.") % {"key": key})
        return errors

    # -- data centres ----------------------------------------------------------------

    @property
    def accounts_servers(self) -> dict[str, str]:
        configured = self.setting("ACCOUNTS_SERVERS")
        if configured:
            return {code: url.rstrip("/") for code, url in configured.items()}
        return {code: servers[0] for code, servers in DATA_CENTRES.items()}

    @property
    def api_domains(self) -> dict[str, str]:
        """Data centre -> API domain: ``API_DOMAINS``, else the built-in table for the configured data centres.

        A token is sent to an account's stored ``api_domain`` only when it is one of these, so
        a changed column cannot send it elsewhere.
        """
        configured = self.setting("API_DOMAINS")
        if configured:
            return {code: url.rstrip("/") for code, url in configured.items()}
        return {code: DATA_CENTRES[code][1] for code in self.accounts_servers if code in DATA_CENTRES}

    @property
    def data_centre(self) -> str:
        return self.setting("DATA_CENTRE", DEFAULT_DATA_CENTRE)

    @property
    def home_accounts_server(self) -> str:
        """Where the authorise request starts and where self-client codes are exchanged."""
        return self.accounts_servers.get(self.data_centre, "")

    def allowed_accounts_server(self, url: str) -> str:
        """The configured accounts server ``url`` names, by exact origin; refuse anything else."""
        wanted = origin(url or "")
        for server in self.accounts_servers.values():
            if wanted and origin(server) == wanted:
                return server
        raise AccountsServerNotAllowed(_("The sign-in came back from an accounts server this site does not trust."))

    def data_centre_of(self, accounts_server: str) -> str:
        wanted = origin(accounts_server)
        for code, server in self.accounts_servers.items():
            if origin(server) == wanted:
                return code
        return ""

    def self_client_context(
        self, *, accounts_server: str | None = None, data_centre: str | None = None
    ) -> CallbackContext:
        """Where a self-client code is exchanged: an allow-listed accounts server, named or by data centre.

        Raises ``SelfClientError`` (with a message for the operator) for anything else, before
        any secret is sent.
        """
        servers = self.accounts_servers
        if accounts_server and data_centre:
            raise SelfClientError(_("Pass either --accounts-server or --data-centre, not both."))
        if accounts_server:
            try:
                server = self.allowed_accounts_server(accounts_server)
            except AccountsServerNotAllowed:
                raise SelfClientError(
                    _(
                        "%(url)s is not an accounts server this site trusts; the client secret is not sent there. "
                        "Known servers: %(known)s (BIGOAUTH ACCOUNTS_SERVERS)."
                    )
                    % {"url": accounts_server, "known": ", ".join(sorted(servers.values()))}
                ) from None
        else:
            code = (data_centre or self.data_centre).lower()
            if code not in servers:
                raise SelfClientError(
                    _("Unknown data centre %(code)r; known: %(known)s.")
                    % {"code": code, "known": ", ".join(sorted(servers))}
                )
            server = servers[code]
        return CallbackContext(accounts_server=server, data_centre=self.data_centre_of(server))

    def configuration_errors(self) -> list[str]:
        if self.data_centre not in self.accounts_servers:
            known = ", ".join(sorted(self.accounts_servers))
            return [_("Unknown DATA_CENTRE %(code)r; known: %(known)s.") % {"code": self.data_centre, "known": known}]
        return []

    def endpoint_urls(self) -> dict[str, str]:
        urls = super().endpoint_urls()
        for code, server in self.accounts_servers.items():
            urls[f"ACCOUNTS_SERVERS[{code!r}]"] = server
        return urls

    # -- endpoints on the account's accounts server ------------------------------------

    def get_authorize_url(self) -> str:
        return self.setting("AUTHORIZE_URL", f"{self.home_accounts_server}/oauth/v2/auth")

    def get_token_url(self, accounts_server: str = "") -> str:
        return self.setting("TOKEN_URL", f"{self._trusted_server(accounts_server)}/oauth/v2/token")

    def get_revoke_url(self, accounts_server: str = "") -> str:
        return self.setting("REVOKE_URL", f"{self._trusted_server(accounts_server)}/oauth/v2/token/revoke")

    def _trusted_server(self, accounts_server: str) -> str:
        """The account's accounts server, checked again against the allow-list: the value comes from
        a stored column, and the client secret and the refresh token are about to go there."""
        if not accounts_server:
            return self.home_accounts_server
        try:
            return self.allowed_accounts_server(accounts_server)
        except AccountsServerNotAllowed:
            raise UnsafeURL(
                f"{origin(accounts_server) or 'The stored accounts server'} is not an accounts server of "
                f"{self.display_name} (ACCOUNTS_SERVERS): the client secret is not sent there."
            ) from None

    def get_api_base_url(self, api_domain: str = "") -> str:
        if self.setting("API_BASE_URL"):
            return self.setting("API_BASE_URL")
        if not api_domain:
            fallback = self.api_domains.get(self.data_centre) or DATA_CENTRES[DEFAULT_DATA_CENTRE][1]
            return fallback
        wanted = origin(api_domain)
        for domain in self.api_domains.values():
            if wanted and origin(domain) == wanted:
                return domain
        raise UnsafeURL(
            f"{wanted or 'The API domain'} is not an API domain of {self.display_name} (API_DOMAINS): "
            "no token is sent there."
        )

    # -- authorise and callback ----------------------------------------------------------

    def extra_authorization_params(self) -> dict[str, str]:
        # offline: a refresh token is issued; consent: issued again after the first consent.
        return {"access_type": "offline", "prompt": "consent"}

    def read_callback(self, params: Mapping[str, str]) -> CallbackContext:
        server = params.get("accounts-server")
        if not server:
            if "code" in params:
                raise CallbackError(_("The sign-in came back without naming its accounts server."))
            return CallbackContext()
        trusted = self.allowed_accounts_server(server)
        location = params.get("location") or self.data_centre_of(trusted)
        return CallbackContext(accounts_server=trusted, data_centre=self.data_centre_of(trusted) or location)

    # -- replies -----------------------------------------------------------------------------

    def read_expiry(self, data: Mapping[str, Any], now: datetime) -> datetime | None:
        # Older replies: "expires_in_sec" in seconds and "expires_in" in milliseconds.
        if data.get("expires_in_sec") not in (None, ""):
            return super().read_expiry({"expires_in": _number(data["expires_in_sec"], "expires_in_sec")}, now)
        return super().read_expiry(data, now)

    def parse_identity(self, data: Any) -> Identity | None:
        orgs = data.get("org") if isinstance(data, dict) else None
        if not isinstance(orgs, list) or not orgs or not isinstance(orgs[0], dict):
            return None
        org = orgs[0]
        external_id = org.get("id") or org.get("zgid")
        if not external_id:
            return None
        return Identity(external_id=str(external_id), label=str(org.get("company_name") or ""))
