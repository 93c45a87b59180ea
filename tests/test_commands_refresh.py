"""``manage.py bigoauth_refresh``: refresh now, through the same locked path."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_bigoauth.models import LinkedAccount, Token
from tests.lifecycle_support import raw_token_row


def refresh(*args: str) -> str:
    out = StringIO()
    call_command("bigoauth_refresh", *args, stdout=out)
    return out.getvalue()


def test_account_forces_a_refresh_of_a_fresh_token(fake_provider, make_account):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), label="CRM")

    output = refresh("--account", str(account.pk))

    token = Token.objects.get(account=account)
    assert token.access_token != "1000.access.initial"
    assert token.access_token in fake_provider.live_access_tokens
    assert fake_provider.refresh_calls() == 1
    assert f"Account {account.pk} (bigin, CRM): refreshed; expires in 59m" in output
    assert token.access_token not in output and token.refresh_token not in output


def test_all_refreshes_every_active_account(fake_provider, make_account):
    one = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), external_id="1")
    two = make_account("biggerplate", refresh_token=fake_provider.issue_refresh_token(), external_id="2")
    dead = make_account("bigin", external_id="3", status=LinkedAccount.Status.NEEDS_REAUTH)
    before = raw_token_row(dead)

    output = refresh("--all")

    assert fake_provider.refresh_calls() == 2
    assert f"Account {one.pk} " in output and f"Account {two.pk} " in output
    assert f"Account {dead.pk} " not in output
    assert raw_token_row(dead) == before


def test_expiring_within_refreshes_only_those(fake_provider, make_account):
    soon = make_account("bigin", expires_in=300, refresh_token=fake_provider.issue_refresh_token(), external_id="1")
    later = make_account("bigin", expires_in=3000, refresh_token=fake_provider.issue_refresh_token(), external_id="2")
    before = raw_token_row(later)

    output = refresh("--expiring-within", "600")

    assert fake_provider.refresh_calls() == 1
    assert Token.objects.get(account=soon).access_token in fake_provider.live_access_tokens
    assert raw_token_row(later) == before
    assert f"Account {soon.pk} " in output and f"Account {later.pk} " not in output


def test_nothing_to_refresh(fake_provider, make_account):
    make_account("bigin", expires_in=3000)
    assert refresh("--expiring-within", "600").strip() == "No accounts to refresh."
    assert fake_provider.requests == []


def test_failures_are_reported_per_account_and_fail_the_command(fake_provider, make_account, monkeypatch):
    good = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), external_id="1")
    bad = make_account("bigin", refresh_token="1000.refresh.revoked", external_id="2")
    out = StringIO()

    with pytest.raises(CommandError, match="^1 of 2 accounts could not be refreshed.$"):
        call_command("bigoauth_refresh", "--all", stdout=out)

    output = out.getvalue()
    assert f"Account {good.pk} (bigin, -): refreshed" in output
    assert f"Account {bad.pk} (bigin, -): Account {bad.pk} (bigin) must be linked again" in output
    assert "1000.refresh.revoked" not in output
    assert LinkedAccount.objects.get(pk=bad.pk).status == LinkedAccount.Status.NEEDS_REAUTH


def test_transient_failure(fake_provider, make_account):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token())
    before = raw_token_row(account)
    fake_provider.queue_reply(503, "busy", content_type="text/plain")
    with pytest.raises(CommandError, match="1 of 1 account could not be refreshed"):
        refresh("--account", str(account.pk))
    assert raw_token_row(account) == before


def test_unknown_account_is_an_error_before_anything_is_sent(fake_provider, make_account):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token())
    with pytest.raises(CommandError, match="^No linked account with id 999.$"):
        refresh("--account", str(account.pk), "--account", "999")
    assert fake_provider.requests == []


@pytest.mark.parametrize("args", [[], ["--all", "--expiring-within", "60"], ["--expiring-within", "-5"]])
def test_bad_arguments(fake_provider, db, args):
    with pytest.raises(CommandError):
        refresh(*args)
    assert fake_provider.requests == []
