"""``account.revoke()`` / ``revocation.revoke_account``: the one revoke path."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from django_bigoauth import signals
from django_bigoauth.exceptions import AccountRevoked, BigOAuthError, RevokeError
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.revocation import RevokeOutcome
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import closed_port_url, raw_token_row


@pytest.fixture
def revoked_signals():
    log = []
    signals.account_revoked.connect(lambda **kw: log.append(kw), weak=False, dispatch_uid="t-revoked")
    yield log
    signals.account_revoked.disconnect(dispatch_uid="t-revoked")


def test_zoho_revoke_posts_the_refresh_token_in_the_body(fake_provider, make_account, revoked_signals):
    refresh_token = fake_provider.issue_refresh_token()
    account = make_account("bigin", refresh_token=refresh_token, accounts_server=fake_provider.url)

    result = account.revoke()

    assert (result.outcome, result.confirmed, bool(result)) == (RevokeOutcome.REVOKED, True, True)
    (call,) = fake_provider.calls("/oauth/v2/token/revoke")
    assert call.method == "POST"
    assert call.server == "us"
    assert call.form["token"] == refresh_token
    assert call.form["token_type_hint"] == "refresh_token"  # RFC 7009
    assert call.query == ""  # never in the query string, which servers and proxies log
    assert refresh_token not in fake_provider.live_refresh_tokens
    assert not Token.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.REVOKED
    with pytest.raises(AccountRevoked) as excinfo:
        account.get_access_token()
    assert isinstance(excinfo.value, BigOAuthError)
    assert [(kw["account"].pk, kw["confirmed"]) for kw in revoked_signals] == [(account.pk, True)]


def test_provider_without_revoke_endpoint_removes_tokens_locally(fake_provider, make_account, revoked_signals):
    account = make_account("biggerplate")

    result = account.revoke()

    assert (result.outcome, result.confirmed, bool(result)) == (RevokeOutcome.REMOVED_LOCALLY, False, False)
    assert fake_provider.requests == []
    assert not Token.objects.filter(account=account).exists()
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.REVOKED
    with pytest.raises(AccountRevoked):
        account.get_access_token()
    assert [(kw["account"].pk, kw["confirmed"]) for kw in revoked_signals] == [(account.pk, False)]


def test_provider_failure_changes_nothing(fake_provider, make_account, settings, revoked_signals):
    config = bigoauth_settings_for(fake_provider)
    config["PROVIDERS"]["bigin"]["REVOKE_URL"] = f"{closed_port_url()}/oauth/v2/token/revoke"
    settings.BIGOAUTH = config
    account = make_account("bigin")
    before = raw_token_row(account)

    with pytest.raises(RevokeError):
        account.revoke()

    assert raw_token_row(account) == before
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert revoked_signals == []


@pytest.mark.parametrize("error", ["invalid_code", "invalid_token"])
def test_a_token_the_provider_no_longer_knows_counts_as_revoked(fake_provider, make_account, revoked_signals, error):
    # An account whose refresh token died (needs re-authorisation) must still be revocable.
    account = make_account("bigin", accounts_server=fake_provider.url, status=LinkedAccount.Status.NEEDS_REAUTH)
    fake_provider.queue_reply(200, {"error": error}, path_suffix="/revoke")

    assert account.revoke().outcome is RevokeOutcome.REVOKED

    assert len(fake_provider.calls("/revoke")) == 1
    assert not Token.objects.filter(account=account).exists()
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.REVOKED
    assert [kw["account"].pk for kw in revoked_signals] == [account.pk]


def test_a_refusal_for_another_reason_changes_nothing(fake_provider, make_account, revoked_signals):
    account = make_account("bigin", accounts_server=fake_provider.url)
    before = raw_token_row(account)
    fake_provider.queue_reply(200, {"error": "invalid_client"}, path_suffix="/revoke")

    with pytest.raises(RevokeError, match="invalid_client"):
        account.revoke()

    assert raw_token_row(account) == before
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert revoked_signals == []


def test_every_entry_point_revokes_through_the_one_function(
    fake_provider, make_account, monkeypatch, admin_client, client, django_user_model
):
    """``account.revoke()``, the disconnect view, the admin action and the command share one path."""

    from django_bigoauth import revocation

    calls = []
    real = revocation.revoke_account

    def spy(account):
        calls.append(account.pk)
        return real(account)

    monkeypatch.setattr(revocation, "revoke_account", spy)
    owner = django_user_model.objects.create_user("owner", password="pw")
    by_code, by_view, by_admin, by_command = (
        make_account("bigin", user=owner, external_id=f"org-{n}", accounts_server=fake_provider.url) for n in range(4)
    )

    by_code.revoke()
    client.force_login(owner)
    client.post(reverse("bigoauth:disconnect", args=[by_view.pk]))
    admin_client.post(
        reverse("admin:django_bigoauth_linkedaccount_changelist"),
        {"action": "revoke", "post": "yes", "_selected_action": [by_admin.pk]},
    )
    call_command("bigoauth_revoke", "--account", str(by_command.pk), stdout=io.StringIO())

    assert calls == [by_code.pk, by_view.pk, by_admin.pk, by_command.pk]
    assert len(fake_provider.calls("/revoke")) == 4
    assert set(LinkedAccount.objects.values_list("status", flat=True)) == {LinkedAccount.Status.REVOKED}
