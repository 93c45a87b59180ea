"""What the management commands do, as plain functions that tests and other code can call.

Each ``bigoauth_*`` command parses its arguments, calls one function here and prints the
result. Nothing here prints, and nothing here returns or raises a token: results carry
account ids, labels and expiry times only.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from .exceptions import (
    AccountsServerNotAllowed,
    BigOAuthError,
    InvalidGrant,
    OperationError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from .linking import link_with_code
from .models import LinkedAccount, Token
from .providers import CallbackContext, get_provider
from .providers.bigin import BiginProvider
from .revocation import RevokeResult
from .tokens import refresh_access_token

# OperationError lives in exceptions.py; importing it from here still works.
__all__ = ["OperationError", "account_rows", "exchange_self_client_code", "refresh_accounts", "revoke_account_by_id"]


# -- bigoauth_exchange_code ------------------------------------------------------------------


@sensitive_variables()
def exchange_self_client_code(
    provider_slug: str,
    code: str,
    *,
    accounts_server: str | None = None,
    data_centre: str | None = None,
    label: str = "",
    username: str | None = None,
) -> tuple[LinkedAccount, bool]:
    """Trade a code generated in Zoho's API console ("self client") for a stored account.

    Every check that can fail without the provider (provider, credentials, accounts server,
    user) runs before anything is sent, so a typo never sends the client secret anywhere. The
    exchange carries no redirect_uri: a self client has none. Returns ``(account, created)``;
    the account is site-level unless ``username`` names its owner.
    """
    provider = get_provider(provider_slug)
    if not isinstance(provider, BiginProvider):
        raise OperationError(
            _(
                "Self-client codes are a Zoho feature; link %(provider)s accounts with the site's Connect button "
                "instead."
            )
            % {"provider": provider.display_name}
        )
    for key, value in (("CLIENT_ID", provider.client_id), ("CLIENT_SECRET", provider.client_secret)):
        if not value:
            raise OperationError(
                _(
                    "BIGOAUTH['PROVIDERS'][%(slug)r] has no %(key)s: copy it from the self client in Zoho's "
                    "API console into your settings."
                )
                % {"slug": provider.slug, "key": key}
            )
    server = _self_client_server(provider, accounts_server, data_centre)
    user = _user_by_username(username) if username else None
    context = CallbackContext(accounts_server=server, data_centre=provider.data_centre_of(server))
    try:
        return link_with_code(provider, code, user=user, redirect_uri=None, context=context, label=label)
    except BigOAuthError as exc:
        raise _exchange_error(provider, server, exc) from exc


def _self_client_server(provider: BiginProvider, accounts_server: str | None, data_centre: str | None) -> str:
    """The allow-listed accounts server to exchange the code at; refuses anything else."""
    servers = provider.accounts_servers
    if accounts_server and data_centre:
        raise OperationError(_("Pass either --accounts-server or --data-centre, not both."))
    if accounts_server:
        try:
            return provider.allowed_accounts_server(accounts_server)
        except AccountsServerNotAllowed:
            raise OperationError(
                _(
                    "%(url)s is not an accounts server this site trusts; the client secret is not sent there. "
                    "Known servers: %(known)s (BIGOAUTH ACCOUNTS_SERVERS)."
                )
                % {"url": accounts_server, "known": ", ".join(sorted(servers.values()))}
            ) from None
    code = (data_centre or provider.data_centre).lower()
    if code not in servers:
        raise OperationError(
            _("Unknown data centre %(code)r; known: %(known)s.") % {"code": code, "known": ", ".join(sorted(servers))}
        )
    return servers[code]


def _user_by_username(username: str) -> Any:
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise OperationError(_("No user with the username %(username)r.") % {"username": username}) from None


def _exchange_error(provider: BiginProvider, server: str, exc: BigOAuthError) -> OperationError:
    """A message that tells the operator what to do next, for each way Zoho says no."""
    code = getattr(exc, "error_code", None) or ""
    if isinstance(exc, InvalidGrant):
        message = _(
            "%(server)s refused the code (%(error)s): self-client codes are single use and expire after the few "
            "minutes chosen in Zoho's API console, and only work in the data centre they were made in. Generate a "
            "new code; if your Zoho account is not in %(dc)r, pass --data-centre."
        ) % {"server": server, "error": code, "dc": provider.data_centre_of(server) or server}
    elif code == "invalid_client":
        message = _(
            "%(server)s does not know the client id %(client_id)s: the client is probably registered in another "
            "data centre. Pass --data-centre (or --accounts-server) for the one it was made in."
        ) % {"server": server, "client_id": provider.client_id}
    elif code == "invalid_client_secret":
        message = _(
            "%(server)s refused the client secret: check BIGOAUTH['PROVIDERS'][%(slug)r]['CLIENT_SECRET'] against "
            "the self client in Zoho's API console."
        ) % {"server": server, "slug": provider.slug}
    elif isinstance(exc, (ProviderTimeout, ProviderUnavailable)):
        message = _("%(server)s could not be reached or is busy; try again shortly (%(detail)s).") % {
            "server": server,
            "detail": exc,
        }
    elif isinstance(exc, ProviderError):
        message = _("The code exchange at %(server)s failed: %(detail)s") % {"server": server, "detail": exc}
    else:
        message = str(exc)
    return OperationError(message)


# -- bigoauth_accounts ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccountRow:
    """One line of the ``bigoauth_accounts`` table: nothing secret, nothing decrypted."""

    id: int
    provider: str
    owner: str
    label: str
    data_centre: str
    status: str
    expires_in: str


def account_rows(*, provider: str | None = None, now: datetime | None = None) -> list[AccountRow]:
    """Every linked account with its token's expiry.

    The expiry is read from its own column, so listing works even when a token cannot be
    decrypted (a removed key) — which is when an operator most needs the list.
    """
    now = now or timezone.now()
    queryset = LinkedAccount.objects.select_related("user").annotate(
        token_expires_at=F("token__expires_at"), token_id=F("token__id")
    )
    if provider:
        queryset = queryset.filter(provider=provider)
    rows = []
    for account in queryset.order_by("pk"):
        if account.token_id is None:
            expires_in = _("no token")
        else:
            expires_in = describe_expiry(account.token_expires_at, now)
        rows.append(
            AccountRow(
                id=account.pk,
                provider=account.provider,
                owner=account.user.get_username() if account.user_id else _("(site)"),
                label=account.label,
                data_centre=account.data_centre or "-",
                status=str(account.get_status_display()),
                expires_in=expires_in,
            )
        )
    return rows


def describe_expiry(expires_at: datetime | None, now: datetime) -> str:
    """ "in 59m", "expired 3m ago" or "no expiry", for tables and messages."""
    if expires_at is None:
        return _("no expiry")
    seconds = (expires_at - now).total_seconds()
    if seconds > 0:
        return format_duration(seconds)
    return _("expired %(duration)s ago") % {"duration": format_duration(-seconds)}


def format_duration(seconds: float) -> str:
    """A short, human duration: ``45s``, ``59m``, ``2h 05m``, ``3d 4h``."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


# -- bigoauth_refresh ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RefreshResult:
    account: LinkedAccount
    ok: bool
    message: str


def refresh_accounts(
    *,
    account_ids: list[int] | None = None,
    all_active: bool = False,
    expiring_within: float | None = None,
) -> list[RefreshResult]:
    """Refresh accounts now, through the same locked path as ``get_access_token()``.

    ``account_ids``: those accounts, whatever their expiry (an unknown id is an error before
    anything is refreshed). ``all_active``: every active account. ``expiring_within``: active
    accounts whose token expires within that many seconds. One account failing does not stop
    the others; each result says what happened.

    Each refresh passes the generation read here, so an account that a web worker refreshed
    a moment ago is not refreshed a second time.
    """
    accounts = _accounts_to_refresh(account_ids, all_active, expiring_within)
    generations = dict(
        Token.objects.filter(account__in=[a.pk for a in accounts]).values_list("account_id", "generation")
    )
    results = []
    for account in accounts:
        try:
            refresh_access_token(account, force=True, seen_generation=generations.get(account.pk))
        except BigOAuthError as exc:
            results.append(RefreshResult(account, False, str(exc)))
            continue
        expires_at = Token.objects.filter(account=account).values_list("expires_at", flat=True).first()
        when = describe_expiry(expires_at, timezone.now())
        results.append(RefreshResult(account, True, _("refreshed; expires in %(when)s") % {"when": when}))
    return results


def _accounts_to_refresh(
    account_ids: list[int] | None, all_active: bool, expiring_within: float | None
) -> list[LinkedAccount]:
    if sum((bool(account_ids), all_active, expiring_within is not None)) != 1:
        raise OperationError(_("Choose exactly one of --account, --all and --expiring-within."))
    if account_ids:
        found = LinkedAccount.objects.in_bulk(account_ids)
        missing = [str(pk) for pk in account_ids if pk not in found]
        if missing:
            raise OperationError(
                ngettext("No linked account with id %(ids)s.", "No linked accounts with ids %(ids)s.", len(missing))
                % {"ids": ", ".join(missing)}
            )
        return [found[pk] for pk in dict.fromkeys(account_ids)]
    queryset = LinkedAccount.objects.filter(status=LinkedAccount.Status.ACTIVE, token__isnull=False)
    if expiring_within is not None:
        if expiring_within < 0:
            raise OperationError(_("--expiring-within takes a number of seconds, 0 or more."))
        deadline = timezone.now() + timedelta(seconds=expiring_within)
        queryset = queryset.filter(token__expires_at__lte=deadline)
    return list(queryset.order_by("pk"))


# -- bigoauth_revoke ---------------------------------------------------------------------------------


def revoke_account_by_id(account_id: int) -> RevokeResult:
    """Revoke one account through :func:`django_bigoauth.revocation.revoke_account`."""
    try:
        account = LinkedAccount.objects.get(pk=account_id)
    except LinkedAccount.DoesNotExist:
        raise OperationError(_("No linked account with id %(id)s.") % {"id": account_id}) from None
    return account.revoke()
