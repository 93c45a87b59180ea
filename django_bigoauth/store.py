"""Every write to a token row, and the database connection it goes through.

One module owns the rules that keep concurrent writers from losing each other's work:

* **The generation.** Every write that replaces the token (link, re-link, refresh) bumps
  ``Token.generation``; a refresh or revoke only writes while the generation it started
  from is still there, so a newer token is never overwritten with an older one.
* **The refresh claim.** Before a refresh or revoke sends anything, one caller claims the
  row with a single conditional ``UPDATE`` (:func:`try_claim`): the claim holds a random id
  and an expiry. Only the claimant sends the request; others wait for the generation to move.
  No transaction stays open across HTTP, which is what lets SQLite (no row locks) keep
  "exactly one refresh" across processes too. A re-link overrides a claim: it writes a new
  grant, and the claimant's conditional write then finds the row changed and leaves it.
* **The lock order.** Writers that touch both rows lock the token row first, then the account
  row (link, the needs-re-authorisation mark, revoke). Locking the account first would
  deadlock with any of them on PostgreSQL and MariaDB.
* **The database.** Writes go to ``router.db_for_write(Token)``. When the caller is inside a
  transaction of its own (``ATOMIC_REQUESTS``, ``transaction.atomic()``), a refresh or revoke
  is written through a second connection to the same database, the alias
  ``<alias>__bigoauth`` that :func:`register_independent_alias` derives at startup, so that it
  is committed even if the caller's transaction rolls back: with a provider that rotates
  refresh tokens, a rolled-back refresh would lose the only refresh token the provider still
  accepts. Where that connection cannot be used (SQLite, whose writers exclude each other;
  a row the caller created in its uncommitted transaction, as in Django's ``TestCase``; a row
  the caller holds locked), the write happens in the caller's transaction as before.

Nothing here sends HTTP; ``tokens.py``, ``revocation.py`` and ``linking.py`` decide when to
call these functions.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import secrets
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .crypto import Sealed
from .models import LinkedAccount, Token

logger = logging.getLogger("django_bigoauth")

__all__ = [
    "INDEPENDENT_SUFFIX",
    "REFUSED",
    "ClaimState",
    "Route",
    "claim_state",
    "claim_state_query",
    "independent_alias",
    "mark_needs_reauth",
    "raw_ciphertext_columns",
    "read_claim_state",
    "read_token",
    "register_independent_alias",
    "release_claim",
    "remove_revoked",
    "replace_ciphertext",
    "route",
    "store_link",
    "store_refresh",
    "token_db",
    "try_claim",
]

INDEPENDENT_SUFFIX = "__bigoauth"
#: The claim a refused refresh leaves on the row: no refresh may claim it again (its refresh
#: token is dead); a revoke may, and a re-link clears it. Never a claim id (those are hex).
REFUSED = "refused"
#: Seconds the independent connection waits for a row lock before concluding the caller holds it.
INDEPENDENT_LOCK_WAIT = 2


def token_db() -> str:
    return router.db_for_write(Token)


# -- which connection ---------------------------------------------------------------------------


def independent_alias(db: str) -> str:
    return f"{db}{INDEPENDENT_SUFFIX}"


def register_independent_alias() -> str | None:
    """Add ``<token db>__bigoauth`` to the connections (called by ``AppConfig.ready()``).

    A copy of the token database's settings with ``ATOMIC_REQUESTS`` off (so no view ever
    wraps it in the request's transaction) and ``TEST["MIRROR"]`` set (so test runners point
    it at the test database). Not on SQLite. An alias of that name in ``DATABASES`` is left as
    the site configured it. Returns the alias, or ``None``.
    """
    db = token_db()
    alias = independent_alias(db)
    configured = connections.settings
    if alias in configured:
        return alias
    primary = configured.get(db)
    if not primary or primary.get("ENGINE", "").endswith("sqlite3"):
        return None
    derived = copy.deepcopy(primary)
    derived["ATOMIC_REQUESTS"] = False
    derived["AUTOCOMMIT"] = True
    derived["TEST"] = {**derived.get("TEST", {}), "MIRROR": db}
    configured[alias] = derived
    return alias


@dataclasses.dataclass(frozen=True)
class Route:
    """Where a refresh or revoke writes: ``db``; ``in_callers_transaction`` when that is the caller's own."""

    db: str
    in_callers_transaction: bool


def route(account_pk: Any) -> Route:
    """The connection for a refresh or revoke of ``account_pk``; see the module docstring."""
    db = token_db()
    connection = connections[db]
    if not connection.in_atomic_block:
        return Route(db, in_callers_transaction=False)
    blocks = getattr(connection, "atomic_blocks", [])
    if blocks and all(getattr(block, "_from_testcase", False) for block in blocks):
        # Django's TestCase: its rows are invisible to any other connection, and its
        # transaction is the test's business, not a caller's to warn about.
        return Route(db, in_callers_transaction=False)
    alias = independent_alias(db)
    if alias in connections.settings and _usable(alias, db, account_pk):
        return Route(alias, in_callers_transaction=False)
    return Route(db, in_callers_transaction=True)


def _usable(alias: str, db: str, account_pk: Any) -> bool:
    """Whether the independent connection sees the token row and can lock it without waiting on us."""
    independent = connections[alias]
    primary_name = connections[db].settings_dict["NAME"]
    if independent.settings_dict["NAME"] != primary_name:  # a test runner renamed the database
        independent.close()
        independent.settings_dict["NAME"] = primary_name
    try:
        _bound_lock_wait(alias)
        with transaction.atomic(using=alias):
            return Token.objects.using(alias).select_for_update().filter(account_id=account_pk).exists()
    except DatabaseError:
        # Lock wait exceeded: the caller's own transaction holds the row (it linked or
        # refreshed it already), or the connection cannot be made at all.
        return False
    except AssertionError:
        # Django's test framework refuses queries to aliases a test did not declare
        # (DatabaseOperationForbidden); the caller's transaction is then the only way.
        return False


#: Django's connection (one per thread and alias) -> the database connection whose lock wait is bounded.
#: Compared by identity: a reconnect opens a new database connection, which is bounded again.
_bounded: weakref.WeakKeyDictionary[BaseDatabaseWrapper, Any] = weakref.WeakKeyDictionary()


def _bound_lock_wait(alias: str) -> None:
    """Make the independent connection give up on a row lock after a moment instead of waiting forever.

    The lock it would wait for may be held by the caller's own transaction, which waits for
    us: without a bound, that is a deadlock no database detects. Set once per connection.
    """
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    if _bounded.get(connection) is raw:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET lock_timeout = '{INDEPENDENT_LOCK_WAIT}s'")
        elif connection.vendor == "mysql":
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {INDEPENDENT_LOCK_WAIT}")
    _bounded[connection] = raw


# -- reads ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClaimState:
    """The columns a caller waiting for a refresh looks at; no token in it."""

    generation: int
    claim: str
    claimed_until: datetime | None
    status: str


def claim_state_query(db: str, account_pk: Any) -> QuerySet:
    """The row of :class:`ClaimState`, for the sync and the async readers alike (one token per account)."""
    return (
        Token.objects.using(db)
        .filter(account_id=account_pk)
        .values_list("generation", "refresh_claim", "refresh_claimed_until", "account__status")[:1]
    )


def claim_state(rows: Sequence[tuple]) -> ClaimState | None:
    """The :class:`ClaimState` of what :func:`claim_state_query` fetched; ``None`` when there is no token."""
    return ClaimState(*rows[0]) if rows else None


def read_claim_state(db: str, account_pk: Any) -> ClaimState | None:
    return claim_state(list(claim_state_query(db, account_pk)))


def read_token(db: str, account_pk: Any) -> Token | None:
    """The token with its account; ``TokenDecryptionError`` if no key fits or the binding is wrong."""
    return Token.objects.using(db).select_related("account").filter(account_id=account_pk).first()


# -- the claim ------------------------------------------------------------------------------------


def try_claim(
    db: str, account_pk: Any, generation: int, now: datetime, ttl: timedelta, *, for_refresh: bool = True
) -> str | None:
    """Claim the refresh (or revoke) of ``generation``; the claim id, or ``None`` if someone else holds it.

    One conditional ``UPDATE``: it matches only while the generation is unchanged and no live
    claim exists (none, or one past its expiry: its claimant died), so of any number of
    callers in any number of processes, one matches. A refresh also needs the row not to be
    marked :data:`REFUSED` and the account to be active: once the provider has refused the
    refresh token, nobody sends it again. The mark is on the token row itself so that it is
    rechecked with the other conditions when the ``UPDATE`` had to wait for a row lock.
    """
    claim = secrets.token_hex(16)
    free = Q(refresh_claim="") | Q(refresh_claimed_until__lt=now)
    if not for_refresh:
        free |= Q(refresh_claim=REFUSED)
    rows = Token.objects.using(db).filter(free, account_id=account_pk, generation=generation)
    if for_refresh:
        # A subquery on the account, not a join: with a join Django moves every condition into
        # an "id IN (SELECT ...)" subquery, and PostgreSQL rechecks only the outer conditions
        # after waiting for a row lock, so two concurrent claims could both match. The token's
        # own conditions must stay on the row being updated.
        active = LinkedAccount.objects.using(db).filter(pk=account_pk, status=LinkedAccount.Status.ACTIVE)
        rows = rows.filter(account_id__in=active.values("pk"))
    updated = rows.update(refresh_claim=claim, refresh_claimed_until=now + ttl)
    return claim if updated else None


def release_claim(db: str, account_pk: Any, claim: str) -> None:
    """Give the claim up without a new token (the refresh failed): waiting callers see it gone."""
    Token.objects.using(db).filter(account_id=account_pk, refresh_claim=claim).update(
        refresh_claim="", refresh_claimed_until=None
    )


@sensitive_variables()
def store_refresh(db: str, token: Token, claim: str, values: Any, now: datetime) -> bool:
    """Write a refresh made under ``claim``; False if the row moved on meanwhile (the claim was lost).

    ``values`` is a :class:`~django_bigoauth.policy.RefreshValues`. The refresh token is
    replaced only when the reply carried one.
    """
    fields: dict[str, Any] = {
        "access_token": Sealed(values.access_token, owner=token.account_id, field="access_token"),
        "expires_at": values.expires_at,
        "refreshed_at": now,
        "updated_at": now,
        "generation": token.generation + 1,
        "refresh_claim": "",
        "refresh_claimed_until": None,
    }
    if values.refresh_token:
        fields["refresh_token"] = Sealed(values.refresh_token, owner=token.account_id, field="refresh_token")
    if values.token_type:
        fields["token_type"] = values.token_type
    if values.scope:
        fields["scope"] = values.scope
    updated = (
        Token.objects.using(db).filter(pk=token.pk, generation=token.generation, refresh_claim=claim).update(**fields)
    )
    return bool(updated)


def mark_needs_reauth(db: str, account_pk: Any, claim: str, generation: int) -> bool:
    """The refresh token of ``generation`` was refused: mark the account, unless the token changed since.

    A re-link stored meanwhile means the account is fine: the refusal was for its old grant.
    Returns whether this call moved the account (so it alone sends the signal).
    """
    with transaction.atomic(using=db):
        # Token row first, then the account row: the lock order of every writer.
        still_current = bool(
            Token.objects.using(db)
            .filter(account_id=account_pk, generation=generation, refresh_claim=claim)
            .update(refresh_claim=REFUSED, refresh_claimed_until=None)
        )
        if not still_current:
            return False
        return bool(
            LinkedAccount.objects.using(db)
            .filter(pk=account_pk, status=LinkedAccount.Status.ACTIVE)
            .update(status=LinkedAccount.Status.NEEDS_REAUTH, updated_at=timezone.now())
        )


def remove_revoked(db: str, account_pk: Any, claimed: tuple[str, int] | None) -> bool:
    """Delete the revoked token and mark the account revoked; False if a re-link replaced it meanwhile.

    ``claimed`` is the token's ``(claim, generation)``; with ``None`` (there was no token row),
    only the account is marked.
    """
    with transaction.atomic(using=db):
        if claimed is not None:
            claim, generation = claimed
            deleted, _ = (
                Token.objects.using(db)
                .filter(account_id=account_pk, generation=generation, refresh_claim=claim)
                .delete()
            )
            if not deleted:
                return False
        elif Token.objects.using(db).filter(account_id=account_pk).exists():
            return False  # linked again since the caller looked: that link stays
        LinkedAccount.objects.using(db).filter(pk=account_pk).update(
            status=LinkedAccount.Status.REVOKED, updated_at=timezone.now()
        )
    return True


# -- linking --------------------------------------------------------------------------------------


@sensitive_variables()
def store_link(
    lookup: dict[str, Any],
    fields: dict[str, Any],
    token_values: dict[str, Any],
    *,
    keep_label: bool,
    refuse_unidentified: Any = None,
) -> tuple[LinkedAccount, bool]:
    """Create or update the account and its token in one transaction: both are written or neither is.

    ``token_values`` holds plaintext tokens; they are sealed to the account here. A re-link
    bumps the generation and clears any refresh claim: it is a new grant, and a refresh or
    revoke of the old one in flight must not overwrite or delete it.
    ``refuse_unidentified`` is called inside the transaction before anything is written, for
    the caller's checks that must see the same snapshot.
    """
    db = token_db()
    with transaction.atomic(using=db):
        if refuse_unidentified is not None:
            refuse_unidentified()
        account, created = _lock_or_create(db, lookup, fields)
        if not created:
            if keep_label and account.label:
                fields = {name: value for name, value in fields.items() if name != "label"}  # the owner's choice
            for name, value in fields.items():
                setattr(account, name, value)
            account.save(using=db)
        values = _sealed(account.pk, token_values)
        values.update(refresh_claim="", refresh_claimed_until=None)
        # Written without reading the old token first: one that no longer decrypts (a key
        # was removed) must not stop the owner from linking the account again.
        updated = (
            Token.objects.using(db)
            .filter(account=account)
            .update(generation=F("generation") + 1, updated_at=token_values["refreshed_at"], **values)
        )
        if not updated:
            Token.objects.using(db).create(account=account, generation=1, **token_values)
    return account, created


@sensitive_variables()
def _sealed(account_pk: Any, token_values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: Sealed(value, owner=account_pk, field=name) if name in Token.ENCRYPTED_FIELDS and value else value
        for name, value in token_values.items()
    }


def _lock_or_create(db: str, lookup: dict[str, Any], fields: dict[str, Any]) -> tuple[LinkedAccount, bool]:
    """The account of ``lookup``, row-locked (token row first), or a new one; ``(account, created)``."""
    account = _lock_existing(db, lookup)
    if account is not None:
        return account, False
    try:
        with transaction.atomic(using=db):  # a savepoint: a lost race must not spoil the transaction
            return LinkedAccount.objects.using(db).create(**lookup, **fields), True
    except IntegrityError:
        # Linked by another request at this very moment (it waited for that one to commit).
        account = _lock_existing(db, lookup)
        if account is None:
            raise
        return account, False


def _lock_existing(db: str, lookup: dict[str, Any]) -> LinkedAccount | None:
    account_pk = LinkedAccount.objects.using(db).filter(**lookup).values_list("pk", flat=True).first()
    if account_pk is None:
        return None
    # values_list: the lock is all that is wanted, not the (encrypted) token.
    list(Token.objects.using(db).select_for_update().filter(account_id=account_pk).values_list("pk", flat=True))
    # None if the account was deleted meanwhile: then it is created anew.
    return LinkedAccount.objects.using(db).select_for_update().filter(pk=account_pk).first()


# -- key rotation ---------------------------------------------------------------------------------


def replace_ciphertext(db: str, token_pk: Any, generation: int, ciphertexts: dict[str, str]) -> bool:
    """Write re-encrypted values as they are, unless the token was rewritten since ``generation``.

    ``Value(..., output_field=TextField())`` writes ciphertext untouched; a plain string for an
    ``EncryptedTextField`` would be refused (it must be sealed to its row).
    """
    updated = (
        Token.objects.using(db)
        .filter(pk=token_pk, generation=generation)
        .update(**{name: Value(value, output_field=TextField()) for name, value in ciphertexts.items()})
    )
    return bool(updated)


def raw_ciphertext_columns(through: str = "") -> dict[str, Cast]:
    """Annotations that read the encrypted columns as stored: ``raw_access_token``, ``raw_refresh_token``.

    ``through="token__"`` reads them from a ``LinkedAccount`` query.
    """
    return {f"raw_{name}": Cast(f"{through}{name}", output_field=TextField()) for name in Token.ENCRYPTED_FIELDS}
