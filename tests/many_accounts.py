"""Thousands of linked accounts with tokens, made fast: for the query-count tests and ``benchmarks/bench_admin.py``.

``bulk_create`` runs each field's ``pre_save``, so ``LinkedAccount.owner_key`` is filled and
each token is sealed to its own account (ciphertext is bound to the account's id and column,
so it cannot be made once and copied): one Fernet encryption per token value, a few seconds
for ten thousand accounts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

#: (status, share of the accounts, token?) — most active, some needing a new link, a few revoked
MIX = (("active", 0.90, True), ("needs_reauth", 0.07, True), ("revoked", 0.03, False))


def create_accounts(count: int, *, owners: int = 50, prefix: str = "bulk", batch_size: int = 1000) -> int:
    """``count`` accounts (Bigin and Biggerplate, site-level and owned by ``owners`` users), with tokens.

    Expiry varies from two hours ago to an hour ahead, so stale and fresh tokens both show.
    Returns how many tokens were made. Nothing is kept in memory beyond one batch.
    """
    from django_bigoauth.models import LinkedAccount, Token

    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [
            user_model(**{user_model.USERNAME_FIELD: f"{prefix}-owner-{index}"}, email=f"{prefix}-{index}@example.com")
            for index in range(owners)
        ]
    )
    if any(user.pk is None for user in users):  # databases that return no ids from a bulk insert
        users = list(user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__startswith": f"{prefix}-owner-"}))
    now = timezone.now()
    tokens = 0
    for start in range(0, count, batch_size):
        numbers = range(start, min(start + batch_size, count))
        accounts = LinkedAccount.objects.bulk_create([_account(n, users, prefix) for n in numbers])
        if any(account.pk is None for account in accounts):
            accounts = list(LinkedAccount.objects.filter(external_id__in=[a.external_id for a in accounts]))
        with_token = [account for account in accounts if account.status != LinkedAccount.Status.REVOKED]
        Token.objects.bulk_create([_token(account, now, prefix) for account in with_token])
        tokens += len(with_token)
    return tokens


def _account(number: int, users: list[Any], prefix: str) -> Any:
    from django_bigoauth.models import LinkedAccount

    status = _status(number)
    bigin = number % 3 != 0
    return LinkedAccount(
        provider="bigin" if bigin else "biggerplate",
        user=None if number % 10 == 0 else users[number % len(users)],
        external_id=f"{prefix}-{number}",
        label=f"{'Organisation' if bigin else 'Maps of'} {prefix} {number}",
        data_centre=("us", "eu", "in", "au")[number % 4] if bigin else "",
        status=status,
    )


def _token(account: Any, now: Any, prefix: str) -> Any:
    from django_bigoauth.models import Token

    number = int(account.external_id.rsplit("-", 1)[1])
    return Token(
        account=account,
        access_token=f"1000.{prefix}.access.{number:08d}",
        refresh_token=f"1000.{prefix}.refresh.{number:08d}",
        expires_at=now + timedelta(seconds=(number % 180) * 60 - 7200),
        refreshed_at=now - timedelta(minutes=number % 600),
    )


def _status(number: int) -> str:
    position = (number * 37 % 100) / 100  # spread the statuses over the ids
    for status, share, _token in MIX:
        if position < share:
            return status
        position -= share
    return MIX[0][0]
