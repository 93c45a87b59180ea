"""A refresh inside the caller's own transaction (``ATOMIC_REQUESTS``, ``transaction.atomic()``).

On PostgreSQL and MariaDB the refresh is written through the second connection
(``<alias>__bigoauth``) and survives the caller's rollback: with a provider that rotates
refresh tokens, a lost refresh would leave the account with a refresh token the provider has
already replaced. Where that connection cannot help (SQLite; a token row the caller's
transaction holds locked; a test case's own transaction) it is written in the caller's
transaction as before, with a warning, once per process.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import path

from django_bigoauth import store, tokens
from django_bigoauth.models import LinkedAccount, Token
from tests.lifecycle_support import ROW_LOCKS, end_other_sessions, require_vendor

WARNING_START = "Refreshing account"


class Boom(Exception):
    pass


def refresh_then_fail(request, pk):
    """A view of the caller's: it calls the API (refreshing the token), then something else fails."""
    LinkedAccount.objects.get(pk=pk).get_access_token()
    raise Boom("after the refresh")


urlpatterns = [path("refresh-then-fail/<int:pk>/", refresh_then_fail)]


@pytest.fixture(autouse=True)
def fresh_warning_flag(monkeypatch):
    monkeypatch.setattr(tokens, "_warned_about_outer_transaction", False)


@pytest.fixture
def rotating(fake_provider):
    fake_provider.rotate_refresh_tokens = True
    return fake_provider


def warnings_logged(caplog):
    return [r for r in caplog.records if r.name == "django_bigoauth" and r.getMessage().startswith(WARNING_START)]


def expired(make_account, fake):
    return make_account("biggerplate", expires_in=-10, refresh_token=fake.issue_refresh_token())


# -- PostgreSQL and MariaDB: the refresh is committed on its own ------------------------------


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_atomic_requests_view_that_raises_keeps_the_refresh(rotating, make_account, settings, caplog, monkeypatch):
    require_vendor(ROW_LOCKS, "a second connection to the same database")
    caplog.set_level(logging.WARNING, logger="django_bigoauth")
    settings.ROOT_URLCONF = __name__
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    account = expired(make_account, rotating)
    before = Token.objects.get(account=account)

    response = Client(raise_request_exception=False).get(f"/refresh-then-fail/{account.pk}/")

    assert response.status_code == 500
    after = Token.objects.get(account=account)
    assert after.generation == before.generation + 1  # committed although the request rolled back
    assert after.access_token != before.access_token
    assert rotating.live_refresh_tokens >= {after.refresh_token}
    assert before.refresh_token not in rotating.live_refresh_tokens  # rotated: only the stored one works
    assert warnings_logged(caplog) == []
    # The rotating provider still accepts what is stored: the account lives on.
    assert LinkedAccount.objects.get(pk=account.pk).refresh() in rotating.live_access_tokens
    assert rotating.refresh_calls() == 2


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_rolled_back_atomic_block_keeps_the_refresh_too(rotating, make_account):
    require_vendor(ROW_LOCKS, "a second connection to the same database")
    account = expired(make_account, rotating)
    with pytest.raises(Boom), transaction.atomic():
        token = account.get_access_token()
        raise Boom
    assert Token.objects.get(account=account).access_token == token
    assert connections[store.independent_alias("default")].in_atomic_block is False


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_token_row_the_caller_holds_locked_falls_back_to_the_callers_transaction(fake_provider, make_account, caplog):
    """The second connection would wait for the caller, who waits for it: after a short bound it is
    given up, and the refresh is written in the caller's transaction, with the warning."""
    require_vendor(ROW_LOCKS, "row locks")
    caplog.set_level(logging.WARNING, logger="django_bigoauth")
    account = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token())
    started = time.monotonic()
    with transaction.atomic():
        list(Token.objects.select_for_update().filter(account=account).values_list("pk"))
        token = account.get_access_token()
    assert time.monotonic() - started < store.INDEPENDENT_LOCK_WAIT + 5
    assert Token.objects.get(account=account).access_token == token
    (record,) = warnings_logged(caplog)
    assert f"account {account.pk} (bigin)" in record.getMessage()


@pytest.mark.django_db(transaction=True)
def test_refreshing_twice_inside_an_outer_transaction_does_not_deadlock(fake_provider, make_account):
    """Row locks held by a caller's transaction (the fallback): a request refreshes, holds the row
    until it ends, and refreshes again after a 401 while another request waits for that row.
    Nothing of ours may make the two wait for each other forever."""
    require_vendor(ROW_LOCKS, "row locks held by an outer transaction")
    account = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token())
    holding = threading.Event()
    outcome = {}

    def first_request() -> None:
        try:
            with transaction.atomic():
                # Lock the row first, so the refresh cannot go around this transaction.
                list(Token.objects.select_for_update().filter(account=account).values_list("pk"))
                current = tokens.current_token(LinkedAccount.objects.get(pk=account.pk))  # refresh 1
                holding.set()
                time.sleep(0.3)  # the second request is now waiting for the row
                outcome["first"] = tokens.refresh_token_now(
                    LinkedAccount.objects.get(pk=account.pk), current.generation
                ).access_token  # refresh 2, as after a 401
        finally:
            connection.close()

    def second_request() -> None:
        try:
            holding.wait(10)
            outcome["second"] = LinkedAccount.objects.get(pk=account.pk).get_access_token()
        finally:
            connection.close()

    threads = [threading.Thread(target=first_request, daemon=True), threading.Thread(target=second_request)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if any(thread.is_alive() for thread in threads):
        end_other_sessions()
        pytest.fail("the two requests deadlocked")
    assert fake_provider.refresh_calls() == 2
    assert outcome["first"] == outcome["second"] == Token.objects.get(account=account).access_token


# -- SQLite: what holds -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_refresh_inside_the_callers_transaction_is_warned_about_once(fake_provider, make_account, caplog):
    require_vendor("sqlite", "the fallback every SQLite refresh inside a transaction takes")
    caplog.set_level(logging.WARNING, logger="django_bigoauth")
    first = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token())
    second = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token(), external_id="o2")
    with transaction.atomic():
        first.get_access_token()
        second.get_access_token()
    (record,) = warnings_logged(caplog)
    assert "non_atomic_requests" in record.getMessage()
    assert f"account {first.pk} (bigin)" in record.getMessage()


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_rolled_back_refresh_costs_one_more_refresh_with_zoho(fake_provider, make_account):
    """What the docs say SQLite keeps: with Zoho, which never rotates, a rollback costs one extra refresh."""
    require_vendor("sqlite", "the fallback every SQLite refresh inside a transaction takes")
    refresh_token = fake_provider.issue_refresh_token()
    account = make_account("bigin", expires_in=-10, refresh_token=refresh_token)
    with pytest.raises(Boom), transaction.atomic():
        account.get_access_token()
        raise Boom
    assert Token.objects.get(account=account).generation == 0  # the refresh was rolled back
    assert LinkedAccount.objects.get(pk=account.pk).get_access_token() in fake_provider.live_access_tokens
    assert [call.form["refresh_token"] for call in fake_provider.calls(grant_type="refresh_token")] == [
        refresh_token,
        refresh_token,
    ]


# -- everywhere -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_no_warning_outside_a_transaction(fake_provider, make_account, caplog):
    caplog.set_level(logging.WARNING, logger="django_bigoauth")
    make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token()).get_access_token()
    assert warnings_logged(caplog) == []


def test_test_case_transactions_do_not_count(fake_provider, make_account, caplog):
    # pytest-django's ``db`` fixture wraps each test in Django's TestCase transaction, whose rows
    # no other connection sees: the refresh stays in it, without a warning.
    caplog.set_level(logging.WARNING, logger="django_bigoauth")
    make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token()).get_access_token()
    assert warnings_logged(caplog) == []
