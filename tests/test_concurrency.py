"""Refresh under concurrency, against a real token server on 127.0.0.1 that answers in 200 ms.

The promise: N callers that find the same expired token cause one refresh request, and every
caller gets the new token. PostgreSQL and MariaDB/MySQL keep it across threads and processes (row lock);
SQLite keeps it across the threads of a process (process lock), and across processes keeps
the weaker promise documented in the README ("Refreshing exactly once"), tested here too.
"""

from __future__ import annotations

import pytest

from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import ROW_LOCKS, end_other_sessions, require_vendor, run_in_processes, run_in_threads

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THREADS = 32
PROCESSES = 4


@pytest.fixture
def slow_fake(fake_provider):
    fake_provider.delay = 0.2
    return fake_provider


def expired_account(make_account, fake):
    return make_account("bigin", expires_in=-30, refresh_token=fake.issue_refresh_token(), api_domain=fake.url)


@pytest.mark.parametrize("rotate", [False, True], ids=["plain", "rotating"])
def test_threads_share_one_refresh(slow_fake, make_account, rotate):
    """Every database: the threads of one process send one refresh request between them."""
    slow_fake.rotate_refresh_tokens = rotate
    account = expired_account(make_account, slow_fake)

    results, errors = run_in_threads(THREADS, lambda: LinkedAccount.objects.get(pk=account.pk).get_access_token())

    assert errors == []
    assert slow_fake.refresh_calls() == 1
    stored = Token.objects.get(account=account)
    assert results == [stored.access_token] * THREADS
    assert stored.access_token in slow_fake.live_access_tokens
    assert stored.refresh_token in slow_fake.live_refresh_tokens


def test_processes_share_one_refresh_with_row_locks(slow_fake, make_account, tmp_path):
    """PostgreSQL, MariaDB/MySQL: separate processes wait on the row lock, so they too send one refresh."""
    require_vendor(ROW_LOCKS, "the row lock that spans processes")
    account = expired_account(make_account, slow_fake)

    reports = run_in_processes(PROCESSES, account.pk, bigoauth_settings_for(slow_fake), tmp_path)

    assert [r.get("error") for r in reports] == [None] * PROCESSES
    assert slow_fake.refresh_calls() == 1
    stored = Token.objects.get(account=account)
    assert [r["token"] for r in reports] == [stored.access_token] * PROCESSES


@pytest.mark.parametrize("rotate", [False, True], ids=["plain", "rotating"])
def test_processes_on_sqlite_refresh_at_most_once_each_and_never_fail(
    slow_fake, make_account, tmp_path, monkeypatch, rotate
):
    """SQLite has no row lock: each process may refresh once, but no caller fails.

    With a rotating provider the processes that lose the race get invalid_grant for the
    refresh token the winner used up; they must take the winner's token, not mark the
    account as needing re-authorisation.
    """
    require_vendor("sqlite", "the cross-process promise of the SQLite path")
    slow_fake.rotate_refresh_tokens = rotate
    account = expired_account(make_account, slow_fake)

    reports = run_in_processes(PROCESSES, account.pk, bigoauth_settings_for(slow_fake), tmp_path)

    assert [r.get("error") for r in reports] == [None] * PROCESSES
    assert 1 <= slow_fake.refresh_calls() <= PROCESSES
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.ACTIVE
    stored = Token.objects.get(account=account)
    # Whoever stored first won; everyone uses that token, and it (and its refresh token) work.
    assert [r["token"] for r in reports] == [stored.access_token] * PROCESSES
    assert stored.access_token in slow_fake.live_access_tokens
    assert stored.refresh_token in slow_fake.live_refresh_tokens
    response = account.session().get("/bigin/v2/org")
    assert response.status_code == 200


def test_sqlite_loser_waits_for_the_winners_write(fake_provider, make_account):
    """The race behind the SQLite promise, made deterministic.

    Another process has already used the (rotating) refresh token at the provider but has
    not stored its reply yet when our refresh request comes back with invalid_grant. We must
    wait for its write and use its token, not declare the account dead.
    """
    require_vendor("sqlite", "the SQLite path (on databases with row locks this race cannot happen)")
    import threading
    import time
    from datetime import timedelta

    from django.db import connection
    from django.db.models import F
    from django.utils import timezone

    from django_bigoauth import client, signals

    fake_provider.rotate_refresh_tokens = True
    account = expired_account(make_account, fake_provider)
    old_refresh = Token.objects.get(account=account).refresh_token
    # The other process's request reaches the provider first...
    winner = client.refresh(account.provider_instance, old_refresh)

    def store_late() -> None:
        # ...and its database write lands 300 ms after our invalid_grant.
        time.sleep(0.3)
        Token.objects.filter(account=account).update(
            access_token=winner.access_token,
            refresh_token=winner.refresh_token,
            expires_at=timezone.now() + timedelta(hours=1),
            generation=F("generation") + 1,
        )
        connection.close()

    reauth = []
    signals.reauthorization_required.connect(lambda **kw: reauth.append(kw), weak=False, dispatch_uid="t-late")
    try:
        writer = threading.Thread(target=store_late)
        writer.start()
        token = account.get_access_token()
        writer.join()
    finally:
        signals.reauthorization_required.disconnect(dispatch_uid="t-late")

    assert token == winner.access_token
    assert fake_provider.refresh_calls() == 2  # the winner's, then our refused one
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.ACTIVE
    assert reauth == []


def test_refreshing_twice_inside_an_outer_transaction_does_not_deadlock(fake_provider, make_account):
    """Row locks with ATOMIC_REQUESTS: a request refreshes, holds the row lock until it ends, and
    refreshes again after a 401 while another request waits for that row. A lock of our own in
    front of the row lock would make the two wait for each other forever.
    """
    require_vendor(ROW_LOCKS, "row locks held by an outer transaction")
    import threading
    import time

    from django.db import connection, transaction

    from django_bigoauth.tokens import current_token, refresh_access_token

    account = expired_account(make_account, fake_provider)
    holding = threading.Event()
    outcome = {}

    def first_request() -> None:
        try:
            with transaction.atomic():
                _, generation = current_token(LinkedAccount.objects.get(pk=account.pk))  # refresh 1, row locked
                holding.set()
                time.sleep(0.3)  # the second request is now waiting for the row
                outcome["first"] = refresh_access_token(
                    LinkedAccount.objects.get(pk=account.pk), force=True, seen_generation=generation
                )  # refresh 2, as after a 401
        finally:
            connection.close()

    def second_request() -> None:
        try:
            holding.wait(10)
            outcome["second"] = LinkedAccount.objects.get(pk=account.pk).get_access_token()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=first_request, daemon=True),
        threading.Thread(target=second_request, daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    if any(thread.is_alive() for thread in threads):
        end_other_sessions()
        pytest.fail("the two requests deadlocked")
    assert fake_provider.refresh_calls() == 2
    assert outcome["first"] == outcome["second"] == Token.objects.get(account=account).access_token
