"""A provider that rotates refresh tokens accepts only the latest one.

One refresh that stores a stale refresh token, or two that race with the same one, and the
provider's reuse detection revokes the whole grant: the account is locked out. After many
sequential and concurrent refreshes it must still work. The provider is a standard one
(Biggerplate's dialect): Zoho never rotates, and caps refreshes at 10 per 10 minutes.
"""

from __future__ import annotations

import pytest

from django_bigoauth.models import LinkedAccount, Token
from tests.lifecycle_support import run_in_threads


@pytest.fixture
def rotating(fake_provider):
    fake_provider.rotate_refresh_tokens = True
    return fake_provider


def assert_account_works(account, fake) -> None:
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.ACTIVE
    stored = Token.objects.get(account=account)
    assert fake.live_refresh_tokens == {stored.refresh_token}, "only the stored refresh token is still accepted"
    response = account.session().get("/users/me")
    assert response.status_code == 200
    # And it refreshes once more.
    assert account.refresh() in fake.live_access_tokens


def test_one_hundred_sequential_forced_refreshes(rotating, make_account):
    account = make_account("biggerplate", refresh_token=rotating.issue_refresh_token())
    seen = set()
    for _ in range(100):
        seen.add(account.refresh())
    assert len(seen) == 100
    assert rotating.refresh_calls() == 100
    assert Token.objects.get(account=account).generation == 100
    assert_account_works(account, rotating)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_thirty_two_concurrent_forced_refreshes(rotating, make_account):
    """Forced refreshes of the same stored token coalesce into one request.

    Each ``refresh()`` asks for "a token newer than the one stored when I asked": callers that
    ask before the first refresh lands share it; a caller that asks after it (a slow thread on
    a loaded machine) rightly refreshes the new token once more. Never two requests for one
    generation: every request returns a token nobody else got, and reuse detection never fires.
    """
    rotating.delay = 0.05
    account = make_account("biggerplate", refresh_token=rotating.issue_refresh_token())

    results, errors = run_in_threads(32, lambda: LinkedAccount.objects.get(pk=account.pk).refresh())

    assert errors == []
    assert rotating.refresh_calls() == len(set(results)) == Token.objects.get(account=account).generation
    assert rotating.refresh_calls() < 32
    assert_account_works(account, rotating)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_thirty_two_concurrent_callers_of_an_expired_token(rotating, make_account):
    rotating.delay = 0.05
    account = make_account("biggerplate", expires_in=-5, refresh_token=rotating.issue_refresh_token())

    results, errors = run_in_threads(32, lambda: LinkedAccount.objects.get(pk=account.pk).get_access_token())

    assert errors == []
    assert len(set(results)) == 1
    assert rotating.refresh_calls() == 1
    assert_account_works(account, rotating)


def test_a_rotated_away_refresh_token_is_refused_zoho_style_and_marks_the_account_once(rotating, make_account):
    """Reuse of a rotated refresh token: the provider revokes the grant and answers HTTP 200
    ``invalid_code``; the account needs linking again, and the signal goes out once."""
    from django_bigoauth import signals
    from django_bigoauth.exceptions import ReauthorizationRequired

    first = rotating.issue_refresh_token()
    account = make_account("bigin", expires_in=-5, refresh_token=first)
    account.get_access_token()  # rotates: ``first`` is now used
    from tests.lifecycle_support import overwrite_token

    overwrite_token(account, refresh_token=first)  # a restored backup puts the used one back
    marked = []
    signals.reauthorization_required.connect(lambda **kw: marked.append(kw), weak=False, dispatch_uid="t-once")
    try:
        for _ in range(3):
            with pytest.raises(ReauthorizationRequired):
                LinkedAccount.objects.get(pk=account.pk).refresh()
    finally:
        signals.reauthorization_required.disconnect(dispatch_uid="t-once")
    assert len(marked) == 1
    assert rotating.refresh_calls() == 2  # the rotation, then the one refused reuse; no more after
    assert rotating.live_refresh_tokens == frozenset()  # reuse detection ended the grant
    (refusal,) = [r for r in rotating.calls(grant_type="refresh_token")][1:]
    assert refusal.server == "us"
