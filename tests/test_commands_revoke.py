"""``manage.py bigoauth_revoke --account ID``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import closed_port_url, raw_token_row


def revoke(account_id) -> str:
    out = StringIO()
    call_command("bigoauth_revoke", "--account", str(account_id), stdout=out)
    return out.getvalue()


def test_zoho_account_is_revoked_at_the_provider(fake_provider, make_account):
    refresh_token = fake_provider.issue_refresh_token()
    account = make_account("bigin", refresh_token=refresh_token, accounts_server=fake_provider.url)

    output = revoke(account.pk)

    (call,) = fake_provider.calls("/oauth/v2/token/revoke")
    assert call.method == "POST"
    assert call.form["token"] == refresh_token
    assert call.query == ""
    assert not Token.objects.filter(account=account).exists()
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.REVOKED
    assert output.strip() == f"[{account.pk}] Bigin account “org-1” (site): revoked at Bigin; its tokens are removed."
    assert refresh_token not in output


def test_provider_without_revoke_endpoint_removes_locally_with_a_note(fake_provider, make_account):
    account = make_account("biggerplate")

    output = revoke(account.pk)

    assert fake_provider.requests == []
    assert not Token.objects.filter(account=account).exists()
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.REVOKED
    assert "Biggerplate has no revoke endpoint" in output


def test_already_revoked(fake_provider, make_account):
    account = make_account("bigin", status=LinkedAccount.Status.REVOKED)
    Token.objects.filter(account=account).delete()
    assert "already revoked" in revoke(account.pk)
    assert fake_provider.requests == []


def test_unknown_account(fake_provider, db):
    with pytest.raises(CommandError, match="^No linked account with id 404.$"):
        revoke(404)
    assert fake_provider.requests == []


def test_provider_failure_changes_nothing(fake_provider, make_account, settings):
    config = bigoauth_settings_for(fake_provider)
    dead_end = closed_port_url()
    config["PROVIDERS"]["bigin"]["REVOKE_URL"] = f"{dead_end}/oauth/v2/token/revoke"
    settings.BIGOAUTH = config
    account = make_account("bigin")
    before = raw_token_row(account)

    with pytest.raises(CommandError, match="did not revoke account") as excinfo:
        revoke(account.pk)

    assert "\n" not in str(excinfo.value)
    assert f"at {dead_end} could not be reached (ConnectionError)" in str(excinfo.value)  # names where
    assert "1000.refresh.initial" not in str(excinfo.value)
    assert raw_token_row(account) == before
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE


def test_account_is_required(db):
    with pytest.raises(CommandError):
        call_command("bigoauth_revoke")
