"""What the management commands do, as plain functions that tests and other code can call.

Each ``bigoauth_*`` command parses its arguments, calls one function here and prints the
result. Nothing here prints, and nothing here returns or raises a token: results carry
account ids, labels and expiry times only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from django.contrib.auth import get_user_model
from django.db.models import F, Max, QuerySet
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from . import crypto, store
from .conf import bigoauth_settings
from .exceptions import (
    BigOAuthError,
    InvalidGrant,
    OperationError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    SelfClientError,
    UnknownProvider,
)
from .humanize import describe_expiry
from .linking import link_with_code
from .models import LinkedAccount, Token, provider_display_name
from .policy import is_stale
from .providers import Provider, get_provider
from .revocation import RevokeResult
from .tokens import refresh_access_token

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

# OperationError lives in exceptions.py; importing it from here still works.
__all__ = [
    "AccountRow",
    "AccountWithTokenColumns",
    "OperationError",
    "RefreshResult",
    "RefreshRun",
    "TokenColumns",
    "account_rows",
    "check_provider_slug",
    "exchange_self_client_code",
    "longest_values",
    "refresh_accounts",
    "revoke_account_by_id",
]


class TokenColumns(TypedDict):
    """The token's columns a list reads with each account (annotations: no token is loaded or decrypted)."""

    token_pk: int | None
    token_expires_at: datetime | None
    token_refreshed_at: datetime | None


class _GenerationColumn(TypedDict):
    token_generation: int | None


#: A ``LinkedAccount`` read with :class:`TokenColumns` (``account_rows()``, the admin's account list).
AccountWithTokenColumns: TypeAlias = "WithAnnotations[LinkedAccount, TokenColumns]"
_AccountWithGeneration: TypeAlias = "WithAnnotations[LinkedAccount, _GenerationColumn]"


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
    try:
        provider = get_provider(provider_slug)
    except UnknownProvider:
        raise OperationError(
            _("No provider %(slug)r is configured in BIGOAUTH['PROVIDERS']. Configured providers: %(configured)s.")
            % {"slug": provider_slug, "configured": ", ".join(bigoauth_settings.PROVIDERS) or _("none")}
        ) from None
    if not provider.supports_self_client:
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
    try:
        # The provider picks the allow-listed server to exchange the code at, and refuses anything else.
        context = provider.self_client_context(accounts_server=accounts_server, data_centre=data_centre)
    except SelfClientError as exc:
        raise OperationError(str(exc)) from None
    user = _user_by_username(username) if username else None
    try:
        return link_with_code(provider, code, user=user, redirect_uri=None, context=context, label=label)
    except BigOAuthError as exc:
        raise _exchange_error(provider, context.accounts_server, context.data_centre, exc) from exc


def _user_by_username(username: str) -> Any:
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise OperationError(_("No user with the username %(username)r.") % {"username": username}) from None


def _exchange_error(provider: Provider, server: str, data_centre: str, exc: BigOAuthError) -> OperationError:
    """A message that tells the operator what to do next, for each way Zoho says no."""
    code = getattr(exc, "error_code", None) or ""
    if isinstance(exc, InvalidGrant):
        message = _(
            "%(server)s refused the code (%(error)s): self-client codes are single use and expire after the few "
            "minutes chosen in Zoho's API console, and only work in the data centre they were made in. Generate a "
            "new code; if your Zoho account is not in %(dc)r, pass --data-centre."
        ) % {"server": server, "error": code, "dc": data_centre or server}
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


# -- listing accounts: the accounts page, the example project's home page, bigoauth_accounts ----


@dataclasses.dataclass(frozen=True)
class AccountRow:
    """One linked account as a list shows it: nothing secret, and no token decrypted unless asked.

    The one row type of every list of accounts: the app's accounts page, the example project's
    home page and ``bigoauth_accounts`` (see :func:`account_rows`).
    """

    account: LinkedAccount
    #: the provider's display name; its slug when it is no longer configured
    provider_name: str
    #: whether the provider is still in ``BIGOAUTH["PROVIDERS"]``
    configured: bool
    #: the owner's username, "" for a site-level account
    owner: str
    #: humanised: "in 59 minutes", "expired 3 minutes ago", "no expiry"; "" when there is no token
    expires: str
    expires_at: datetime | None
    #: the token expires within ``REFRESH_LEEWAY`` (or half its lifetime, if shorter)
    stale: bool
    #: the account still holds a token (revoked accounts do not)
    has_token: bool
    #: False: the stored token cannot be decrypted with any configured key, or was not encrypted
    #: for this account; True: it can; None: not checked (``check_tokens=False``)
    readable: bool | None = None
    #: the authorise URL (the Reconnect form's action); "" when the provider is no longer configured
    reconnect_url: str = ""

    @property
    def id(self) -> int:
        return self.account.pk

    @property
    def unreadable(self) -> bool:
        return self.readable is False

    @property
    def refreshes_on_next_use(self) -> bool:
        """Stale, and the next use refreshes it first: the account is active and its token readable."""
        return (
            self.stale
            and self.configured
            and self.readable is not False
            and self.account.status == LinkedAccount.Status.ACTIVE
        )

    @property
    def status(self) -> str:
        """The account's status; "Token unreadable" for an active account whose token no key decrypts."""
        if self.unreadable and self.account.status == LinkedAccount.Status.ACTIVE:
            return _("Token unreadable")
        return str(self.account.get_status_display())


def account_rows(
    accounts: QuerySet | None = None,
    *,
    provider: str | None = None,
    now: datetime | None = None,
    check_tokens: bool = False,
    batch_size: int = 500,
) -> Iterator[AccountRow]:
    """``accounts`` (default: every linked account) as :class:`AccountRow`, in id order.

    Read ``batch_size`` accounts per query, keyed on the last id seen, so memory stays flat
    however many accounts there are, on every database (``QuerySet.iterator()`` would not:
    mysqlclient reads a whole result set into memory first). Token columns are read as plain
    values; with ``check_tokens`` each token is also decrypted once, to tell an unreadable
    one (a removed key, a ciphertext copied from another row) from a working one: meant for
    the handful of accounts of one user, not for thousands.
    """
    queryset = LinkedAccount.objects.all() if accounts is None else accounts
    if provider:
        queryset = queryset.filter(provider=provider)
    queryset = queryset.select_related("user").annotate(
        token_pk=F("token__pk"),
        token_expires_at=F("token__expires_at"),
        token_refreshed_at=F("token__refreshed_at"),
    )
    if check_tokens:
        queryset = queryset.annotate(**store.raw_ciphertext_columns(through="token__"))
    now = now or timezone.now()
    for account in _in_batches(queryset, batch_size):
        yield _account_row(account, now, check_tokens)


def _account_row(account: AccountWithTokenColumns, now: datetime, check_tokens: bool) -> AccountRow:
    has_token = account.token_pk is not None
    expires_at = account.token_expires_at if has_token else None
    readable = None
    if check_tokens and has_token:
        readable = all(
            crypto.is_readable(getattr(account, f"raw_{name}"), owner=account.pk, field=name)
            for name in Token.ENCRYPTED_FIELDS
        )
    return AccountRow(
        account=account,
        provider_name=provider_display_name(account.provider),
        configured=account.provider in bigoauth_settings.PROVIDERS,
        owner=account.user.get_username() if account.user is not None else "",
        expires=describe_expiry(expires_at, now) if has_token else "",
        expires_at=expires_at,
        stale=has_token and is_stale(expires_at, bigoauth_settings.REFRESH_LEEWAY, now, account.token_refreshed_at),
        has_token=has_token,
        readable=readable,
    )


def _in_batches(queryset: QuerySet, batch_size: int, *, after: int | None = None) -> Iterator[Any]:
    """Every row of ``queryset`` in id order, ``batch_size`` per query (keyset pagination on the id)."""
    queryset = queryset.order_by("pk")
    last = after
    while True:
        batch = list((queryset if last is None else queryset.filter(pk__gt=last))[:batch_size])
        yield from batch
        if len(batch) < batch_size:
            return
        last = batch[-1].pk


def check_provider_slug(slug: str) -> None:
    """``OperationError`` unless ``slug`` is a configured provider or some stored account's.

    An account of a provider removed from the settings can still be listed (and revoked);
    a typo cannot silently list nothing.
    """
    configured = list(bigoauth_settings.PROVIDERS)
    if slug in configured or LinkedAccount.objects.filter(provider=slug).exists():
        return
    raise OperationError(
        _(
            "No provider %(slug)r is configured in BIGOAUTH['PROVIDERS'], and no linked account has it. "
            "Configured providers: %(configured)s."
        )
        % {"slug": slug, "configured": ", ".join(configured) or _("none")}
    )


def longest_values(accounts: QuerySet | None = None, *, provider: str | None = None) -> dict[str, int]:
    """The length of the longest id, provider, owner, label and data centre: one aggregate query.

    What a table needs to align its columns before its first row is printed.
    """
    queryset = LinkedAccount.objects.all() if accounts is None else accounts
    if provider:
        queryset = queryset.filter(provider=provider)
    username = f"user__{get_user_model().USERNAME_FIELD}"
    found = queryset.aggregate(
        id=Max("pk"),
        provider=Max(Length("provider")),
        owner=Max(Length(username)),
        label=Max(Length("label")),
        data_centre=Max(Length("data_centre")),
    )
    return {name: len(str(value)) if name == "id" else value or 0 for name, value in found.items() if value}


# -- bigoauth_refresh ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RefreshResult:
    account: LinkedAccount
    ok: bool
    #: "refreshed; the new token expires in 59 minutes", or why not
    message: str


class RefreshRun:
    """The refreshes one :func:`refresh_accounts` call will make, made one at a time as it is iterated.

    ``total`` is how many accounts it covers. Iterating refreshes each in id order and yields
    its :class:`RefreshResult`; each refresh is stored before the next starts, so a run that
    is interrupted keeps what it did, and ``after=`` (the last id done) goes on from there.
    """

    def __init__(
        self, accounts: QuerySet | list[_AccountWithGeneration], total: int, batch_size: int, after: int | None
    ) -> None:
        self._accounts = accounts
        self.total = total
        self._batch_size = batch_size
        self._after = after

    def __iter__(self) -> Iterator[RefreshResult]:
        if isinstance(self._accounts, list):
            accounts: Iterable[_AccountWithGeneration] = self._accounts
        else:
            accounts = _in_batches(self._accounts, self._batch_size, after=self._after)
        for account in accounts:
            yield _refresh_one(account)


def refresh_accounts(
    *,
    account_ids: list[int] | None = None,
    all_active: bool = False,
    expiring_within: float | None = None,
    after: int | None = None,
    batch_size: int = 500,
) -> RefreshRun:
    """Refresh accounts now, through the same locked path as ``get_access_token()``.

    ``account_ids``: those accounts, whatever their expiry (an unknown id is an error before
    anything is refreshed). ``all_active``: every active account. ``expiring_within``: active
    accounts whose token expires within that many seconds. ``after``: only accounts with a
    larger id (to go on after an interrupted run). Nothing is refreshed until the returned
    :class:`RefreshRun` is iterated; accounts are read ``batch_size`` at a time, so memory
    stays flat whatever their number. One account failing does not stop the others; each
    result says what happened.

    Each refresh passes the generation read with its account, so an account that a web
    worker refreshed a moment ago is not refreshed a second time.
    """
    if sum((bool(account_ids), all_active, expiring_within is not None)) != 1:
        raise OperationError(_("Choose exactly one of --account, --all and --expiring-within."))
    if account_ids:
        if after is not None:
            raise OperationError(_("--after goes with --all or --expiring-within, not with --account."))
        found = {
            account.pk: account
            for account in _with_generation(LinkedAccount.objects.filter(pk__in=account_ids).select_related("user"))
        }
        missing = [str(pk) for pk in account_ids if pk not in found]
        if missing:
            raise OperationError(
                ngettext("No linked account with id %(ids)s.", "No linked accounts with ids %(ids)s.", len(missing))
                % {"ids": ", ".join(missing)}
            )
        chosen = [found[pk] for pk in dict.fromkeys(account_ids)]
        return RefreshRun(chosen, len(chosen), batch_size, None)
    queryset = LinkedAccount.objects.filter(status=LinkedAccount.Status.ACTIVE, token__isnull=False)
    if expiring_within is not None:
        if expiring_within < 0:
            raise OperationError(_("--expiring-within takes a number of seconds, 0 or more."))
        deadline = timezone.now() + timedelta(seconds=expiring_within)
        queryset = queryset.filter(token__expires_at__lte=deadline)
    queryset = _with_generation(queryset.select_related("user"))
    total = (queryset if after is None else queryset.filter(pk__gt=after)).count()
    return RefreshRun(queryset, total, batch_size, after)


def _with_generation(queryset: QuerySet) -> QuerySet:
    return queryset.annotate(token_generation=F("token__generation"))


def _refresh_one(account: _AccountWithGeneration) -> RefreshResult:
    try:
        refresh_access_token(account, force=True, seen_generation=account.token_generation)
    except BigOAuthError as exc:
        return RefreshResult(account, False, str(exc))
    expires_at = Token.objects.filter(account=account).values_list("expires_at", flat=True).first()
    if expires_at is None:
        return RefreshResult(account, True, _("refreshed; the new token has no known expiry"))
    when = describe_expiry(expires_at)
    return RefreshResult(account, True, _("refreshed; the new token expires %(when)s") % {"when": when})


# -- bigoauth_revoke ---------------------------------------------------------------------------------


def revoke_account_by_id(account_id: int) -> RevokeResult:
    """Revoke one account through :func:`django_bigoauth.revocation.revoke_account`."""
    try:
        account = LinkedAccount.objects.get(pk=account_id)
    except LinkedAccount.DoesNotExist:
        raise OperationError(_("No linked account with id %(id)s.") % {"id": account_id}) from None
    return account.revoke()
