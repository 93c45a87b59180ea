"""The one refresh path: exactly one token request per expiry, on every database.

**Hot path.** One SQL query (token, expiry, generation and account status in one row) and
no HTTP, as long as the token is fresh (``policy.is_stale``).

**Refresh.** When the token is stale, one caller in the whole site refreshes it:

1. *In this process*, threads asking for the same generation of the same account share one
   "flight": the first leads, the others wait for its outcome (token or exception). Only the
   leader goes to the database, so a process sends at most one claim attempt at a time.
2. *Across processes*, the leader claims the refresh with one conditional ``UPDATE`` on the
   token row (``store.try_claim``), in its own short transaction. The claimant sends the
   request outside any transaction and writes the new token only if its claim and the
   generation are still there (``store.store_refresh``). Leaders that lose the claim poll the
   row until its generation moves, then use the stored token.
3. A claim lasts ``HTTP_TIMEOUT`` + 5 seconds (``policy.claim_ttl``): the transport ends every
   exchange within ``HTTP_TIMEOUT``, so only a claimant that died leaves a claim behind, and
   once it has expired the next caller takes it over. A caller that waits that long without
   seeing a new token gets ``RefreshError`` ("a refresh is in progress"), never the stale token.

No transaction is held across HTTP and no row lock is needed, so SQLite keeps the promise
across processes as PostgreSQL and MariaDB do. A provider that rotates refresh tokens with
reuse detection (RFC 9700 section 4.14.2) sees each refresh token exactly once.

Inside the caller's own transaction the refresh is written through a second connection
(``store.route``), so a rollback cannot lose it; where that is impossible it is written in the
caller's transaction, with a warning, and such callers neither lead nor join a flight (they
may hold the row lock that a leader would wait for).

**Async.** ``acurrent_token()`` and friends take the same steps (``steps.py``): the hot path
reads its row with Django's async ORM; a refresh is awaited on one future per account and
generation by the coroutines of a loop, and the first of them runs ``refresh_token_now`` in a
worker thread, so it joins the threads' flight and the processes' claim above. The event loop
never waits on the database lock, the claim or the provider.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import client, crypto, policy, signals, steps, store
from .asyncsupport import off_loop, require_async_extra
from .conf import bigoauth_settings
from .exceptions import (
    AccountRevoked,
    BigOAuthError,
    InvalidGrant,
    ProviderError,
    ReauthorizationRequired,
    RefreshError,
    TokenBindingError,
    TokenDecryptionError,
    UnsafeURL,
)
from .models import LinkedAccount, Token
from .redaction import mask

__all__ = [
    "CurrentToken",
    "acurrent_token",
    "aget_access_token",
    "arefresh_access_token",
    "arefresh_token_now",
    "current_token",
    "get_access_token",
    "refresh_access_token",
    "refresh_token_now",
]

logger = logging.getLogger("django_bigoauth")

#: Seconds between two looks at the row while another process refreshes: starts small (a
#: refresh answered in 200 ms is seen quickly) and grows to the ceiling.
_POLL_FIRST, _POLL_CEILING = 0.01, 0.1
#: ``error_code`` of the InvalidGrant raised when there is no refresh token to send at all
_NO_REFRESH_TOKEN = "no_refresh_token"


@dataclasses.dataclass(frozen=True)
class CurrentToken:
    """A usable access token and what identifies it: the generation and when it was obtained."""

    access_token: str
    generation: int
    expires_at: datetime | None
    obtained_at: datetime | None

    def __repr__(self) -> str:
        return f"<CurrentToken {mask(self.access_token)!r} generation={self.generation} expires_at={self.expires_at}>"

    def is_stale(self, now: datetime) -> bool:
        return policy.is_stale(self.expires_at, bigoauth_settings.REFRESH_LEEWAY, now, self.obtained_at)


def get_access_token(account: LinkedAccount) -> str:
    """A valid access token for ``account``; refreshes first when it is stale."""
    return current_token(account).access_token


@sensitive_variables()
def current_token(account: LinkedAccount) -> CurrentToken:
    """The stored token, refreshed first when stale: one query and no HTTP when it is fresh."""
    return steps.run(current_steps(account))


def refresh_access_token(account: LinkedAccount, *, force: bool = False, seen_generation: int | None = None) -> str:
    """Refresh now, unless someone else did since ``seen_generation``; returns the current access token.

    ``force=False`` only refreshes a stale token (as ``get_access_token()``). ``force=True``
    refreshes even a fresh one (``account.refresh()``, the ``bigoauth_refresh`` command, the
    admin's "Refresh now"); without ``seen_generation``, the generation stored now is the one
    to replace.
    """
    return steps.run(refresh_steps(account, force, seen_generation)).access_token


@sensitive_variables()
def refresh_token_now(account: LinkedAccount, seen_generation: int) -> CurrentToken:
    """Make sure a token newer than ``seen_generation`` is stored, refreshing if nobody else does.

    Returns the newer token: the one this call stored, or the one another caller (thread,
    process, re-link) stored meanwhile. Signals are sent after the flight has landed, by the
    caller that made the refresh only.
    """
    route = store.route(account.pk)
    if route.in_callers_transaction:
        _warn_about_callers_transaction(account)
        outcome = _refresh(account, route.db, seen_generation)
    else:
        outcome = _flights.run((account.pk, seen_generation), lambda: _refresh(account, route.db, seen_generation))
    return outcome.finish(account)


# -- the async shells ------------------------------------------------------------------------------


async def aget_access_token(account: LinkedAccount) -> str:
    """``get_access_token()`` for async code: Django's async ORM on the hot path; a refresh runs off the loop."""
    require_async_extra()
    return (await acurrent_token(account)).access_token


@sensitive_variables()
async def acurrent_token(account: LinkedAccount) -> CurrentToken:
    """``current_token()`` for async code: the same steps, awaited."""
    return await steps.arun(current_steps(account))


async def arefresh_access_token(
    account: LinkedAccount, *, force: bool = False, seen_generation: int | None = None
) -> str:
    """``refresh_access_token()`` for async code; the refresh itself runs off the loop."""
    require_async_extra()
    return (await steps.arun(refresh_steps(account, force, seen_generation))).access_token


@sensitive_variables()
async def arefresh_token_now(account: LinkedAccount, seen_generation: int) -> CurrentToken:
    """``refresh_token_now()`` for async code, without blocking the event loop.

    The coroutines of one loop that want the same refresh await one future (per account and
    generation). The first runs ``refresh_token_now`` in a worker thread
    (``sync_to_async(thread_sensitive=False)``), so that it joins this process's threads in
    their flight and the other processes in the claim on the token row: one refresh in all.
    The worker thread closes its database connections when done.
    """
    key = (account.pk, seen_generation)
    try:
        return await _async_flights.run(key, lambda: off_loop(refresh_token_now)(account, seen_generation))
    except BigOAuthError as exc:
        _note_failure(account, exc)  # the leader's copy was marked in the worker thread; a follower's here
        raise


# -- the decisions, written once: generators that yield their I/O (see steps.py) -------------------


def current_steps(account: LinkedAccount) -> steps.StepGenerator[CurrentToken]:
    """The hot path: one row (token, expiry, generation, account status); a refresh when stale."""
    # A slice, not .first(): there is at most one row (one token per account), and .first()
    # would add an ORDER BY and cost about a fifth of the hot path in query building.
    queryset = Token.objects.filter(account_id=account.pk).values_list(
        "access_token", "expires_at", "refreshed_at", "generation", "account__status"
    )
    try:
        rows = yield steps.Fetch(queryset[:1])
    except TokenDecryptionError as exc:
        raise _decryption_error(account, exc) from exc
    if not rows:
        raise (yield from _missing_token_steps(account))
    token = _token_of_row(account, rows[0])
    if token.is_stale(timezone.now()):
        token = yield steps.Refresh(account, token.generation)
    return token


def refresh_steps(
    account: LinkedAccount, force: bool, seen_generation: int | None
) -> steps.StepGenerator[CurrentToken]:
    if not force:
        return (yield from current_steps(account))
    if seen_generation is None:
        state = store.claim_state((yield steps.Fetch(store.claim_state_query(store.token_db(), account.pk))))
        if state is None:
            raise (yield from _missing_token_steps(account))
        _check_status(account, state.status)
        seen_generation = state.generation
    return (yield steps.Refresh(account, seen_generation))


def _missing_token_steps(account: LinkedAccount) -> steps.StepGenerator[BigOAuthError]:
    """The error for an account without a token row: revoked, or to be linked again."""
    # The in-memory account may predate a revoke made elsewhere: ask the database.
    rows = yield steps.Fetch(LinkedAccount.objects.filter(pk=account.pk).values_list("status", flat=True)[:1])
    status = rows[0] if rows else None
    if status == LinkedAccount.Status.REVOKED or (status is None and account.status == LinkedAccount.Status.REVOKED):
        return AccountRevoked(f"Account {account.pk} ({account.provider}) was revoked and has no token.")
    return ReauthorizationRequired(f"Account {account.pk} ({account.provider}) has no token; link it again.")


@sensitive_variables()
def _token_of_row(account: LinkedAccount, row: tuple) -> CurrentToken:
    """The hot path's row as a usable token; raises for a revoked, needs-re-auth or tampered one."""
    access_token, expires_at, obtained_at, generation, status = row
    try:
        access_token = crypto.check_binding(access_token, owner=account.pk, field="access_token")
    except TokenDecryptionError as exc:
        raise _decryption_error(account, exc) from exc
    _check_status(account, status)
    return CurrentToken(access_token, generation, expires_at, obtained_at)


# -- one flight per account and generation, in this process ---------------------------------------


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: _Outcome | None = None
        self.error: BaseException | None = None


class _Flights:
    """Threads of a process that want the same refresh wait for one leader instead of each polling."""

    def __init__(self) -> None:
        self._flights: dict[tuple[Any, int], _Flight] = {}
        self._lock = threading.Lock()

    def run(self, key: tuple[Any, int], work: Any) -> _Outcome:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        assert flight is not None
        if leader:
            try:
                flight.outcome = work()
                return flight.outcome
            except BaseException as exc:
                flight.error = exc
                raise
            finally:
                with self._lock:
                    self._flights.pop(key, None)
                flight.done.set()
        if not flight.done.wait(_flight_bound()):
            raise _still_in_flight(key)
        if flight.error is not None:
            # A copy: one exception object raised in several threads would share its traceback.
            raise copy.copy(flight.error) from None
        assert flight.outcome is not None
        return flight.outcome.as_follower()


_flights = _Flights()


class _AsyncFlights:
    """Coroutines of one event loop that want the same refresh await one task instead of each a thread.

    The task is shielded: a leader that is cancelled (its request went away) leaves the refresh
    running for the others, as a thread's leader would. Followers get a copy of the leader's
    exception, as threads do.
    """

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, int], asyncio.Task]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # several loops, in several threads, may look up their table at once

    async def run(self, key: tuple[Any, int], work: Callable[[], Coroutine[Any, Any, CurrentToken]]) -> CurrentToken:
        loop = asyncio.get_running_loop()
        with self._lock:
            flights = self._loops.setdefault(loop, {})
        task = flights.get(key)
        leader = task is None
        if task is None:
            task = flights[key] = loop.create_task(work())
            task.add_done_callback(lambda done: _landed(flights, key, done))
        try:
            return await asyncio.wait_for(asyncio.shield(task), _flight_bound())
        except asyncio.TimeoutError:
            raise _still_in_flight(key) from None
        except Exception as exc:
            if leader:
                raise
            # A copy, as for threads: one exception object raised in several coroutines would share its traceback.
            raise copy.copy(exc) from None


def _landed(flights: dict[tuple[Any, int], asyncio.Task], key: tuple[Any, int], task: asyncio.Task) -> None:
    if flights.get(key) is task:
        del flights[key]
    if not task.cancelled():
        task.exception()  # retrieved: a failure nobody awaits any more is not logged as "never retrieved"


_async_flights = _AsyncFlights()


def _flight_bound() -> float:
    """How long a follower waits for its leader: the claim's lifetime, and as long again for its database write."""
    return policy.claim_ttl(bigoauth_settings.HTTP_TIMEOUT).total_seconds() * 2


def _still_in_flight(key: tuple[Any, int]) -> RefreshError:
    return RefreshError(f"A refresh of account {key[0]} is in progress in this process; try again shortly.")


# -- the refresh itself --------------------------------------------------------------------------


@dataclasses.dataclass
class _Outcome:
    """What a refresh attempt ended with; signals and exceptions wait until the flight has landed."""

    token: CurrentToken | None = None
    refreshed: bool = False
    failure: BigOAuthError | None = None
    #: this call moved the account to "needs re-authorisation" (so it alone sends the signal)
    marked_needs_reauth: bool = False

    def __repr__(self) -> str:
        return f"<_Outcome refreshed={self.refreshed} failure={type(self.failure).__name__ if self.failure else None}>"

    def as_follower(self) -> _Outcome:
        return _Outcome(token=self.token, failure=self.failure)

    def finish(self, account: LinkedAccount) -> CurrentToken:
        if self.failure is not None:
            _note_failure(account, self.failure)
            if self.marked_needs_reauth:
                signals.reauthorization_required.send(sender=LinkedAccount, account=account)
            raise self.failure
        if self.refreshed:
            signals.token_refreshed.send(sender=LinkedAccount, account=account)
        assert self.token is not None
        return self.token


def _note_failure(account: LinkedAccount, failure: BaseException) -> None:
    """What a failed refresh changes in every caller's copy of the account, leader's and followers' alike."""
    if isinstance(failure, ReauthorizationRequired):
        account.status = LinkedAccount.Status.NEEDS_REAUTH


@sensitive_variables()
def _refresh(account: LinkedAccount, db: str, seen_generation: int) -> _Outcome:
    """Claim the refresh of ``seen_generation`` and make it, or wait for whoever has claimed it."""
    ttl = policy.claim_ttl(bigoauth_settings.HTTP_TIMEOUT)
    deadline = time.monotonic() + ttl.total_seconds()
    claims_seen: set[str] = set()
    pause = _POLL_FIRST
    while True:
        now = timezone.now()
        claim = store.try_claim(db, account.pk, seen_generation, now, ttl)
        if claim is not None:
            return _refresh_with_claim(account, db, claim, seen_generation)
        state = store.read_claim_state(db, account.pk)
        if state is None:
            raise _missing_token_error(account)
        _check_status(account, state.status)
        seen = policy.waiting_state(
            seen_generation=seen_generation,
            generation=state.generation,
            claim=state.claim,
            claimed_until=state.claimed_until,
            now=now,
            claims_seen=claims_seen,
        )
        if seen is policy.TokenState.REFRESHED:
            return _Outcome(token=_stored_token(account, db))
        if seen is policy.TokenState.FAILED_ELSEWHERE:
            raise RefreshError(
                f"Refreshing account {account.pk} ({account.provider}) failed in another worker just now; "
                "the stored token is unchanged. Try again shortly."
            )
        if seen is policy.TokenState.IN_PROGRESS:
            claims_seen.add(state.claim)
        if time.monotonic() >= deadline:
            raise RefreshError(
                f"A refresh of account {account.pk} ({account.provider}) is in progress elsewhere and did not "
                f"finish within {ttl.total_seconds():g} seconds; try again shortly."
            )
        time.sleep(pause)
        pause = min(pause * 1.5, _POLL_CEILING)


@sensitive_variables()
def _refresh_with_claim(account: LinkedAccount, db: str, claim: str, generation: int) -> _Outcome:
    try:
        token = store.read_token(db, account.pk)
        if token is None:
            raise _missing_token_error(account)
        reply = _request_refresh(account, token)
    except InvalidGrant as exc:
        marked = store.mark_needs_reauth(db, account.pk, claim, generation)
        if not marked:
            state = store.read_claim_state(db, account.pk)
            if state is not None and state.generation != generation:
                # Linked again while our request was being refused: the new grant is fine.
                return _Outcome(token=_stored_token(account, db))
        else:
            logger.warning(
                "Account %s (%s) needs re-authorisation: its refresh token was refused (%s)",
                account.pk,
                account.provider,
                exc.error_code or "invalid_grant",
            )
        return _Outcome(failure=_reauth_error(account, exc), marked_needs_reauth=marked)
    except TokenDecryptionError as exc:
        store.release_claim(db, account.pk, claim)
        raise _decryption_error(account, exc) from exc
    except BaseException:
        store.release_claim(db, account.pk, claim)
        raise
    now = timezone.now()
    if store.store_refresh(db, token, claim, policy.refresh_values(reply), now):
        logger.info("Refreshed the token of account %s (%s)", account.pk, account.provider)
        stored = CurrentToken(reply.access_token, generation + 1, reply.expires_at, now)
        return _Outcome(token=stored, refreshed=True)
    # The claim was lost: a re-link replaced the token, or our request outlived the claim and
    # another caller took over. Whatever is stored now is newer than what we started from.
    logger.warning(
        "The refresh of account %s (%s) was not stored: the token changed while it was in flight",
        account.pk,
        account.provider,
    )
    return _Outcome(token=_stored_token(account, db))


@sensitive_variables()
def _request_refresh(account: LinkedAccount, token: Token) -> Any:
    if not token.refresh_token:
        # Nothing to refresh with (Zoho issues refresh tokens on first consent only): the same
        # outcome as a refused refresh token.
        raise InvalidGrant(
            f"Account {account.pk} ({account.provider}) has no refresh token.", error_code=_NO_REFRESH_TOKEN
        )
    provider = account.provider_instance
    try:
        # The stored row's accounts server, not the caller's copy; the provider checks it
        # against the allow-list again before the client secret goes there.
        return client.refresh(provider, token.refresh_token, accounts_server=token.account.accounts_server)
    except InvalidGrant:
        raise
    except UnsafeURL as exc:
        logger.error("Refusing to refresh account %s (%s): %s", account.pk, account.provider, exc)
        raise UnsafeURL(f"Account {account.pk} ({account.provider}): {exc}") from None
    except ProviderError as exc:
        logger.warning("Refresh of account %s (%s) failed: %s", account.pk, account.provider, exc)
        raise RefreshError(f"Refreshing account {account.pk} ({account.provider}) failed: {exc}") from exc


def _stored_token(account: LinkedAccount, db: str) -> CurrentToken:
    try:
        token = store.read_token(db, account.pk)
    except TokenDecryptionError as exc:
        raise _decryption_error(account, exc) from exc
    if token is None:
        raise _missing_token_error(account)
    _check_status(account, token.account.status)
    return CurrentToken(token.access_token, token.generation, token.expires_at, token.refreshed_at)


# -- the caller's transaction -------------------------------------------------------------------

_warned_about_outer_transaction = False


def _warn_about_callers_transaction(account: LinkedAccount) -> None:
    """Say once per process that a refresh is written inside the caller's transaction.

    That happens only where the second connection cannot help (see ``store.route``): its result
    then lives or dies with the caller's transaction, and if that rolls back the refresh is lost
    (a provider that rotates refresh tokens will then refuse the old one).
    """
    global _warned_about_outer_transaction
    if _warned_about_outer_transaction:
        return
    _warned_about_outer_transaction = True
    logger.warning(
        "Refreshing account %s (%s) inside an open transaction (ATOMIC_REQUESTS or transaction.atomic) "
        "that the app cannot write around (SQLite, or the token row is locked or uncommitted in it): "
        "if it rolls back, the new token is lost. Call the API outside the transaction, e.g. with "
        "@transaction.non_atomic_requests; see 'Refreshing exactly once' in the docs.",
        account.pk,
        account.provider,
    )


# -- errors ----------------------------------------------------------------------------------------


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
    return steps.run(_missing_token_steps(account))


def _decryption_error(account: LinkedAccount, cause: TokenDecryptionError) -> TokenDecryptionError:
    if isinstance(cause, TokenBindingError):
        logger.error(
            "The stored token of account %s (%s) was not encrypted for this account (copied from another row "
            "or column?); it is not used",
            account.pk,
            account.provider,
        )
        return TokenBindingError(
            f"The stored token of account {account.pk} ({account.provider}) was not encrypted for this account "
            "and column, so it is not used: someone changed the token table. Link the account again."
        )
    logger.error(
        "The token of account %s (%s) cannot be decrypted with any configured key", account.pk, account.provider
    )
    return TokenDecryptionError(
        f"The token of account {account.pk} ({account.provider}) cannot be decrypted with any key in "
        "BIGOAUTH['ENCRYPTION_KEYS']; restore the key it was written with, or link the account again."
    )
