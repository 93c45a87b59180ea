"""A refresh inside the caller's own transaction: what holds, what does not, and the warning."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from django_bigoauth import tokens
from django_bigoauth.models import LinkedAccount, Token

WARNING_START = "Refreshing account"


class Boom(Exception):
    pass


@pytest.fixture(autouse=True)
def fresh_warning_flag(monkeypatch):
    monkeypatch.setattr(tokens, "_warned_about_outer_transaction", False)


def warnings_logged(caplog):
    return [r for r in caplog.records if r.name == "django_bigoauth" and r.getMessage().startswith(WARNING_START)]


@pytest.mark.django_db(transaction=True)
def test_a_refresh_inside_the_callers_transaction_is_warned_about_once(fake_provider, make_account, caplog):
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
def test_no_warning_outside_a_transaction(fake_provider, make_account, caplog):
    caplog.set_level(logging.WARNING, logger="django_bigoauth")
    make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token()).get_access_token()
    assert warnings_logged(caplog) == []


def test_test_case_transactions_do_not_count(fake_provider, make_account, caplog):
    # pytest-django's ``db`` fixture wraps each test in Django's TestCase transaction.
    caplog.set_level(logging.WARNING, logger="django_bigoauth")
    make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token()).get_access_token()
    assert warnings_logged(caplog) == []


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_refresh_is_refreshed_again_with_the_same_refresh_token(fake_provider, make_account):
    # What the README promises for Zoho, which never rotates refresh tokens: a rollback costs one
    # extra refresh, and the account keeps working.
    refresh_token = fake_provider.issue_refresh_token()
    account = make_account("bigin", expires_in=-10, refresh_token=refresh_token)
    with pytest.raises(Boom), transaction.atomic():
        account.get_access_token()
        raise Boom
    assert Token.objects.get(account=account).generation == 0  # the refresh was rolled back
    assert LinkedAccount.objects.get(pk=account.pk).get_access_token().startswith("1000.access.")
    assert [call.form["refresh_token"] for call in fake_provider.calls(grant_type="refresh_token")] == [
        refresh_token,
        refresh_token,
    ]
