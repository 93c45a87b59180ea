"""Exactly one refresh per expiry, across threads and processes, on every database.

Against the strict fake provider (``tests/fakeprovider.py``) on real 127.0.0.1 sockets, with
its token endpoint answering in 200 ms. With ``rotate_refresh_tokens`` it has reuse detection:
a refresh token presented twice revokes the whole grant, as oidc-provider, Auth0, Keycloak and
django-oauth-toolkit do, so a second refresh request would not be "one wasted call" but a dead
account, and these tests would see it (the API refuses the stored token afterwards).
Run with ``DATABASE_URL`` set to run them on PostgreSQL or MariaDB.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from django_bigoauth.exceptions import RefreshError
from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import run_in_processes, run_in_threads, start_processes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THREADS = 32
PROCESSES, THREADS_EACH = 4, 8


@pytest.fixture
def slow_fake(fake_provider):
    fake_provider.delay = 0.2
    return fake_provider


def expired_account(make_account, fake, provider: str = "bigin"):
    return make_account(provider, expires_in=-30, refresh_token=fake.issue_refresh_token())


def assert_account_works(account, fake) -> None:
    """Active, its stored token accepted by the API, and (rotating) its stored refresh token the only live one."""
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.ACTIVE
    stored = Token.objects.get(account=account)
    assert stored.access_token in fake.live_access_tokens
    assert stored.refresh_token in fake.live_refresh_tokens
    path = "/bigin/v2/org" if account.provider == "bigin" else "/users/me"
    assert account.session().get(path).status_code == 200


@pytest.mark.parametrize(
    ("provider", "rotate"), [("bigin", False), ("biggerplate", True)], ids=["zoho", "rotating-with-reuse-detection"]
)
def test_threads_share_one_refresh(slow_fake, make_account, provider, rotate):
    slow_fake.rotate_refresh_tokens = rotate
    account = expired_account(make_account, slow_fake, provider)

    results, errors = run_in_threads(THREADS, lambda: LinkedAccount.objects.get(pk=account.pk).get_access_token())

    assert errors == []
    assert slow_fake.refresh_calls() == 1
    assert results == [Token.objects.get(account=account).access_token] * THREADS
    assert_account_works(account, slow_fake)


@pytest.mark.parametrize(
    ("provider", "rotate"), [("bigin", False), ("biggerplate", True)], ids=["zoho", "rotating-with-reuse-detection"]
)
def test_processes_and_threads_share_one_refresh(slow_fake, make_account, tmp_path, provider, rotate):
    """4 processes x 8 threads on one expired token: one token request, no failed caller, on every database."""
    slow_fake.rotate_refresh_tokens = rotate
    account = expired_account(make_account, slow_fake, provider)

    results, errors = run_in_processes(
        PROCESSES, account.pk, bigoauth_settings_for(slow_fake), tmp_path, threads=THREADS_EACH
    )

    assert errors == []
    assert slow_fake.refresh_calls() == 1
    assert results == [Token.objects.get(account=account).access_token] * (PROCESSES * THREADS_EACH)
    assert_account_works(account, slow_fake)


def test_api_calls_from_many_processes_share_one_refresh(slow_fake, make_account, tmp_path):
    """The same through ``session()``: every call answered, one refresh between them."""
    slow_fake.rotate_refresh_tokens = True
    account = expired_account(make_account, slow_fake, "biggerplate")

    results, errors = run_in_processes(
        PROCESSES, account.pk, bigoauth_settings_for(slow_fake), tmp_path, threads=THREADS_EACH, action="session_get"
    )

    assert errors == []
    assert results == ["HTTP 200"] * (PROCESSES * THREADS_EACH)
    assert slow_fake.refresh_calls() == 1
    assert_account_works(account, slow_fake)


def test_a_claimant_killed_mid_refresh_does_not_wedge_the_account(fake_provider, make_account, tmp_path, settings):
    """SIGKILL while the refresh request is in flight: others wait out its claim, then one refreshes.

    Zoho's dialect (no rotation): the killed process's request used the refresh token, which
    stays valid. With a rotating provider the grant would be lost whatever the client did, if
    the provider had answered before the process died.
    """
    bigoauth = bigoauth_settings_for(fake_provider, HTTP_TIMEOUT=2)
    settings.BIGOAUTH = bigoauth
    ttl = 2 + 5  # policy.claim_ttl: HTTP_TIMEOUT + 5 s
    account = expired_account(make_account, fake_provider)
    fake_provider.delay = 30  # the first refresh request never gets an answer in time
    (claimant,) = start_processes(1, account.pk, bigoauth, tmp_path)
    deadline = time.monotonic() + 10
    while fake_provider.refresh_calls() == 0:
        assert time.monotonic() < deadline, "the claimant never sent its request"
        time.sleep(0.01)
    os.kill(claimant.pid, signal.SIGKILL)
    claimant.wait()
    killed_at = time.monotonic()
    claimed_until = Token.objects.get(account=account).refresh_claimed_until
    assert claimed_until is not None and claimed_until > timezone.now()
    fake_provider.delay = 0

    outcome = {}
    caller = threading.Thread(target=lambda: outcome.update(token=account.get_access_token()), daemon=True)
    caller.start()
    time.sleep(ttl - 2)
    assert fake_provider.refresh_calls() == 1, "a caller refreshed while the dead claimant's claim was live"
    caller.join(ttl + 5)

    assert not caller.is_alive()
    assert outcome["token"] == Token.objects.get(account=account).access_token
    assert fake_provider.refresh_calls() == 2
    assert time.monotonic() - killed_at >= ttl - 1.5  # it waited for the claim to expire
    assert_account_works(account, fake_provider)


def test_a_caller_that_waits_out_its_bound_gets_refresh_error_not_the_stale_token(
    fake_provider, make_account, settings
):
    """A claim that outlives the caller's bound (held by a worker with a longer HTTP_TIMEOUT):
    ``RefreshError`` saying a refresh is in progress; nothing sent, nothing changed."""
    settings.BIGOAUTH = bigoauth_settings_for(fake_provider, HTTP_TIMEOUT=0.5)
    account = expired_account(make_account, fake_provider)
    Token.objects.filter(account=account).update(
        refresh_claim="f" * 32, refresh_claimed_until=timezone.now() + timedelta(minutes=5)
    )
    before = Token.objects.get(account=account)

    started = time.monotonic()
    with pytest.raises(RefreshError, match="in progress") as excinfo:
        account.get_access_token()

    assert 5 <= time.monotonic() - started < 9  # the bound: HTTP_TIMEOUT + 5 s
    assert before.access_token not in str(excinfo.value)
    assert fake_provider.requests == []
    after = Token.objects.get(account=account)
    assert (after.access_token, after.generation) == (before.access_token, before.generation)


def test_a_refresh_that_failed_elsewhere_is_reported_not_repeated(fake_provider, make_account):
    """Threads waiting for a refresh that fails get the failure; they do not each try again."""
    fake_provider.queue_reply(503, "busy", "text/plain", delay=0.3)
    account = expired_account(make_account, fake_provider)

    results, errors = run_in_threads(8, lambda: LinkedAccount.objects.get(pk=account.pk).get_access_token())

    assert results == []
    assert len(errors) == 8 and all(isinstance(error, RefreshError) for error in errors)
    assert fake_provider.refresh_calls() == 1
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert Token.objects.get(account=account).refresh_claim == ""  # released: the next call may try again
    assert account.get_access_token() in fake_provider.live_access_tokens


def test_a_refused_refresh_token_is_sent_once_and_every_caller_hears_why(slow_fake, make_account, tmp_path):
    """Zoho refuses a dead refresh token with HTTP 200 ``invalid_code``: one request, 32 callers told."""
    account = make_account("bigin", expires_in=-30, refresh_token="1000.refresh.revoked-at-zoho")

    results, errors = run_in_processes(
        PROCESSES, account.pk, bigoauth_settings_for(slow_fake), tmp_path, threads=THREADS_EACH
    )

    assert results == []
    assert len(errors) == PROCESSES * THREADS_EACH
    assert all(error.startswith("ReauthorizationRequired") for error in errors), errors[:3]
    assert slow_fake.refresh_calls() == 1
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.NEEDS_REAUTH
