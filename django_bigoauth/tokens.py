"""The one refresh path: lock, re-read, refresh, save, signal.

Hot path: one SQL query (token, expiry, generation and account status in one row) and no
HTTP. When the token is stale, callers serialise on a lock, and whoever takes it second
re-reads the row and, seeing a newer ``generation``, uses the token the first one stored
instead of refreshing again. The lock is

* on databases with row locks (PostgreSQL, MySQL, Oracle): ``SELECT ... FOR UPDATE`` on the
  token row, held across the refresh request, so every thread of every process waits for the
  one refresh. No lock of our own is taken first: a thread that already holds the row lock in
  an outer transaction (``ATOMIC_REQUESTS``) and refreshes again must never wait for a thread
  that is itself waiting for that row, which a lock in front of the row lock would allow.
* on SQLite (no row locks): a lock per account inside this process. The HTTP request is made
  outside any transaction (a transaction held across it would block every writer of the
  database), and the write is conditional on the generation that was read, so a refresh from
  another process is never overwritten by an older one. Across processes each process may
  refresh once; when the provider rotates refresh tokens, the losers get ``invalid_grant``
  for the refresh token the winner used up, wait briefly for the winner's write, and use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import client, signals
from .conf import bigoauth_settings
from .exceptions import (
    AccountRevoked,
    BigOAuthError,
    InvalidGrant,
    ProviderError,
    ReauthorizationRequired,
    RefreshError,
    TokenDecryptionError,
)
from .models import LinkedAccount, Token, is_stale
from .providers import TokenReply

logger = logging.getLogger("django_bigoauth")

_process_locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
_process_locks_guard = threading.Lock()

#: Seconds a SQLite worker whose refresh token was refused waits for another process to
#: store the refresh that used it up, before it concludes the account needs linking again.
#: The winner got its reply before ours was sent, so only its database write is pending.
ROTATION_GRACE = 2.0
_GRACE_POLL = 0.02
#: ``error_code`` of the InvalidGrant raised when there is no refresh token to send at all
_NO_REFRESH_TOKEN = "no_refresh_token"


def get_access_token(account: LinkedAccount) -> str:
    """A valid access token for ``account``; refreshes first when it is stale."""
    return current_token(account)[0]


@sensitive_variables()
def current_token(account: LinkedAccount) -> tuple[str, int]:
    """``(access_token, generation)``, refreshed first when stale.

    The generation tells a later forced refresh (a 401 from the API) which token it is
    replacing, so that it uses a refresh another worker made in the meantime instead of
    refreshing again.
    """
    # A slice, not .first(): there is at most one row (one token per account), and .first()
    # would add an ORDER BY and cost about a fifth of the hot path in query building.
    queryset = Token.objects.filter(account_id=account.pk).values_list(
        "access_token", "expires_at", "generation", "account__status"
    )
    try:
        row = next(iter(queryset[:1]), None)
    except TokenDecryptionError as exc:
        raise _decryption_error(account) from exc
    if row is None:
        raise _missing_token_error(account)
    access_token, expires_at, generation, status = row
    _check_status(account, status)
    if not is_stale(expires_at, bigoauth_settings.REFRESH_LEEWAY):
        return access_token, generation
    return _refresh(account, force=False, seen_generation=generation)


def refresh_access_token(account: LinkedAccount, *, force: bool = False, seen_generation: int | None = None) -> str:
    """Refresh unless someone else did since ``seen_generation``; returns the current token.

    ``force=True`` refreshes even a fresh token (the ``bigoauth_refresh`` command, a 401 from
    the API). With ``seen_generation`` set, a refresh stored by another worker since that
    generation is used instead, forced or not.
    """
    return _refresh(account, force=force, seen_generation=seen_generation)[0]


def _refresh(account: LinkedAccount, *, force: bool, seen_generation: int | None) -> tuple[str, int]:
    db = router.db_for_write(Token)
    # Asked before our own transaction opens, which must not count as the caller's.
    callers_transaction = inside_callers_transaction(db)
    if connections[db].features.has_select_for_update:
        outcome = _refresh_with_row_lock(account, db, force, seen_generation, callers_transaction)
    else:
        with _process_lock(account.pk):
            outcome = _refresh_without_row_lock(account, db, force, seen_generation, callers_transaction)
    return outcome.finish(account)


@dataclass
class _Outcome:
    """What happened under the lock; signals and exceptions wait until the lock is released."""

    access_token: str = ""
    generation: int = 0
    refreshed: bool = False
    failure: BigOAuthError | None = None
    #: this worker moved the account to "needs re-authorisation" (so it alone sends the signal)
    marked_needs_reauth: bool = False

    @classmethod
    def current(cls, token: Token, *, refreshed: bool = False) -> _Outcome:
        return cls(token.access_token, token.generation, refreshed=refreshed)

    def finish(self, account: LinkedAccount) -> tuple[str, int]:
        if isinstance(self.failure, ReauthorizationRequired):
            account.status = LinkedAccount.Status.NEEDS_REAUTH
            if self.marked_needs_reauth:
                signals.reauthorization_required.send(sender=LinkedAccount, account=account)
        if self.failure is not None:
            raise self.failure
        if self.refreshed:
            signals.token_refreshed.send(sender=LinkedAccount, account=account)
        return self.access_token, self.generation


def _refresh_with_row_lock(account, db, force, seen_generation, callers_transaction) -> _Outcome:
    with transaction.atomic(using=db):
        token = _read_token(account, db, lock=True)
        if not _needs_refresh(token, force, seen_generation):
            return _Outcome.current(token)
        try:
            reply = _request_refresh(account, token, callers_transaction)
        except InvalidGrant as exc:
            marked = _mark_needs_reauth(account, db, exc.error_code or "invalid_grant")
            return _Outcome(failure=_reauth_error(account, exc), marked_needs_reauth=marked)
        _store(token, reply, db)
        return _Outcome.current(token, refreshed=True)


def _refresh_without_row_lock(account, db, force, seen_generation, callers_transaction) -> _Outcome:
    token = _read_token(account, db, lock=False)
    if not _needs_refresh(token, force, seen_generation):
        return _Outcome.current(token)
    read_generation = token.generation
    try:
        reply = _request_refresh(account, token, callers_transaction)
    except InvalidGrant as exc:
        # Another process may have used (and rotated) the refresh token first. It got its
        # reply before we got ours, so its write is at most moments away: wait for it.
        if exc.error_code != _NO_REFRESH_TOKEN:
            current = _await_other_refresh(account, db, read_generation)
            if current is not None:
                return _Outcome.current(current)
        marked = _mark_needs_reauth(account, db, exc.error_code or "invalid_grant", expect_generation=read_generation)
        if not marked:
            # Either the winner's write landed after all, or another worker marked the account.
            return _Outcome.current(_read_token(account, db, lock=False))
        return _Outcome(failure=_reauth_error(account, exc), marked_needs_reauth=True)
    with transaction.atomic(using=db):
        if not _store(token, reply, db, expect_generation=read_generation):
            # Another process stored a refresh while ours was in flight; theirs stays.
            return _Outcome.current(_read_token(account, db, lock=False))
    return _Outcome.current(token, refreshed=True)


def _await_other_refresh(account: LinkedAccount, db: str, generation: int) -> Token | None:
    """The token another process stored since ``generation``, if one turns up within the grace."""
    deadline = time.monotonic() + ROTATION_GRACE
    while True:
        current = _read_token(account, db, lock=False)
        if current.generation != generation:
            return current
        if time.monotonic() >= deadline:
            return None
        time.sleep(_GRACE_POLL)


def _needs_refresh(token: Token, force: bool, seen_generation: int | None) -> bool:
    if seen_generation is not None and token.generation != seen_generation:
        return False
    return force or token.expires_within(bigoauth_settings.REFRESH_LEEWAY)


def _read_token(account: LinkedAccount, db: str, *, lock: bool) -> Token:
    queryset = Token.objects.using(db).select_related("account")
    if lock:
        queryset = queryset.select_for_update(of=("self",)) if _supports_of(db) else queryset.select_for_update()
    try:
        token = queryset.get(account_id=account.pk)
    except Token.DoesNotExist:
        raise _missing_token_error(account) from None
    except TokenDecryptionError as exc:
        raise _decryption_error(account) from exc
    _check_status(account, token.account.status)
    return token


def _supports_of(db: str) -> bool:
    return connections[db].features.has_select_for_update_of


@sensitive_variables()
def _request_refresh(account: LinkedAccount, token: Token, callers_transaction: bool) -> TokenReply:
    provider = account.provider_instance
    if callers_transaction:
        _warn_about_callers_transaction(account)
    if not token.refresh_token:
        # Nothing to refresh with (Zoho issues refresh tokens on first consent only): the same
        # outcome as a refused refresh token.
        raise InvalidGrant(
            f"Account {account.pk} ({account.provider}) has no refresh token.", error_code=_NO_REFRESH_TOKEN
        )
    try:
        reply = client.refresh(provider, token.refresh_token, accounts_server=account.accounts_server)
    except InvalidGrant:
        raise
    except ProviderError as exc:
        logger.warning("Refresh of account %s (%s) failed: %s", account.pk, account.provider, exc)
        raise RefreshError(f"Refreshing account {account.pk} ({account.provider}) failed: {exc}") from exc
    return reply


_warned_about_outer_transaction = False


def _warn_about_callers_transaction(account: LinkedAccount) -> None:
    """Say once per process that a refresh is about to be written inside the caller's transaction.

    Its result then lives or dies with that transaction: if it rolls back, the refresh is lost
    (a provider that rotates refresh tokens will then refuse the old one), and on SQLite other
    threads cannot see it until it commits. Test cases' own transactions do not count.
    """
    global _warned_about_outer_transaction
    if _warned_about_outer_transaction:
        return
    _warned_about_outer_transaction = True
    logger.warning(
        "Refreshing account %s (%s) inside an open transaction (ATOMIC_REQUESTS or transaction.atomic): "
        "if it rolls back, the new token is lost. Call the API outside the transaction, e.g. with "
        "@transaction.non_atomic_requests; see the README, 'Refreshing exactly once'.",
        account.pk,
        account.provider,
    )


def inside_callers_transaction(db: str) -> bool:
    """True inside ``transaction.atomic`` blocks other than those Django's test cases open."""
    connection = connections[db]
    return connection.in_atomic_block and any(
        not getattr(block, "_from_testcase", False) for block in getattr(connection, "atomic_blocks", [])
    )


def _store(token: Token, reply: TokenReply, db: str, *, expect_generation: int | None = None) -> bool:
    """Write the new token; a missing refresh token in the reply keeps the old one."""
    now = timezone.now()
    token.access_token = reply.access_token
    if reply.refresh_token:
        token.refresh_token = reply.refresh_token
    token.token_type = reply.token_type or token.token_type
    token.expires_at = reply.expires_at
    if reply.scope:
        token.scope = reply.scope
    token.refreshed_at = now
    token.updated_at = now
    fields = ["access_token", "refresh_token", "token_type", "expires_at", "scope", "refreshed_at", "updated_at"]
    queryset = Token.objects.using(db).filter(pk=token.pk)
    if expect_generation is not None:
        queryset = queryset.filter(generation=expect_generation)
    updated = queryset.update(generation=token.generation + 1, **{field: getattr(token, field) for field in fields})
    if updated:
        token.generation += 1
        logger.info("Refreshed the token of account %s (%s)", token.account_id, token.account.provider)
    return bool(updated)


def _mark_needs_reauth(account: LinkedAccount, db: str, reason: str, *, expect_generation: int | None = None) -> bool:
    """Move an active account to "needs re-authorisation"; False if it was not (or no longer) due.

    With ``expect_generation``, only while the token is still the one that was refused: a
    refresh stored by another process in the meantime means the account is fine.
    """
    queryset = LinkedAccount.objects.using(db).filter(pk=account.pk, status=LinkedAccount.Status.ACTIVE)
    if expect_generation is not None:
        queryset = queryset.filter(token__generation=expect_generation)
    marked = bool(queryset.update(status=LinkedAccount.Status.NEEDS_REAUTH, updated_at=timezone.now()))
    if marked:
        logger.warning(
            "Account %s (%s) needs re-authorisation: its refresh token was refused (%s)",
            account.pk,
            account.provider,
            reason,
        )
    return marked


def _reauth_error(account: LinkedAccount, exc: InvalidGrant) -> ReauthorizationRequired:
    if exc.error_code == _NO_REFRESH_TOKEN:
        reason = "it has no refresh token"
    else:
        reason = f"the provider refused its refresh token ({exc.error_code or 'invalid_grant'})"
    error = ReauthorizationRequired(f"Account {account.pk} ({account.provider}) must be linked again: {reason}.")
    error.__cause__ = exc
    return error


def _check_status(account: LinkedAccount, status: str) -> None:
    if status == LinkedAccount.Status.REVOKED:
        raise AccountRevoked(f"Account {account.pk} ({account.provider}) was revoked.")
    if status == LinkedAccount.Status.NEEDS_REAUTH:
        raise ReauthorizationRequired(f"Account {account.pk} ({account.provider}) must be linked again.")


def _missing_token_error(account: LinkedAccount) -> BigOAuthError:
    # The in-memory account may predate a revoke made elsewhere: ask the database.
    status = LinkedAccount.objects.filter(pk=account.pk).values_list("status", flat=True).first()
    if status == LinkedAccount.Status.REVOKED or (status is None and account.status == LinkedAccount.Status.REVOKED):
        return AccountRevoked(f"Account {account.pk} ({account.provider}) was revoked and has no token.")
    return ReauthorizationRequired(f"Account {account.pk} ({account.provider}) has no token; link it again.")


def _decryption_error(account: LinkedAccount) -> TokenDecryptionError:
    logger.error(
        "The token of account %s (%s) cannot be decrypted with any configured key", account.pk, account.provider
    )
    return TokenDecryptionError(
        f"The token of account {account.pk} ({account.provider}) cannot be decrypted with any key in "
        "BIGOAUTH['ENCRYPTION_KEYS']; restore the key it was written with, or link the account again."
    )


class _process_lock:
    """A lock per account id, shared by the threads of this process."""

    def __init__(self, account_pk: int):
        with _process_locks_guard:
            self._lock = _process_locks[account_pk]

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info) -> None:
        self._lock.release()
