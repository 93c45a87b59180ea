"""``manage.py bigoauth_exchange_code bigin <code>``: Zoho's self client, against the fake token server."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import bigoauth_settings_for


@pytest.fixture
def zoho(fake_provider):
    """Two data centres on two servers: "us" (``url``) and "eu" (``eu_url``); each knows only its own codes."""
    return fake_provider


def exchange(*args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command("bigoauth_exchange_code", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def assert_nothing_happened(fake) -> None:
    assert fake.requests == []
    assert not LinkedAccount.objects.exists()


def test_exchanges_a_self_client_code_for_a_site_level_account(zoho, db):
    code = zoho.issue_code()

    output = exchange("bigin", code)

    account = LinkedAccount.objects.get()
    assert account.user is None
    assert (account.provider, account.external_id, account.label) == ("bigin", "org-1", "Acme Ltd")
    assert (account.data_centre, account.accounts_server, account.api_domain) == ("us", zoho.url, zoho.api_url)
    assert account.status == LinkedAccount.Status.ACTIVE
    token = Token.objects.get(account=account)
    assert token.access_token in zoho.live_access_tokens
    assert token.refresh_token in zoho.live_refresh_tokens
    (call,) = zoho.calls("/oauth/v2/token")
    assert call.form == {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "1000.BIGIN",
        "client_secret": "bigin-secret-value",
    }  # a self client has no redirect_uri
    assert call.query == ""
    assert output.strip() == f"[{account.pk}] Bigin account “Acme Ltd” (site): linked; data centre us."
    for secret in (token.access_token, token.refresh_token, code, "bigin-secret-value"):
        assert secret not in output


def test_label_and_user(zoho, db):
    alice = get_user_model().objects.create_user("alice")
    exchange("bigin", zoho.issue_code(), "--label", "Sales CRM", "--user", "alice")
    account = LinkedAccount.objects.get()
    assert account.user == alice
    assert account.label == "Sales CRM"


def test_data_centre_picks_the_accounts_server(zoho, db):
    exchange("bigin", zoho.issue_code(server="eu"), "--data-centre", "eu")
    (call,) = zoho.calls("/oauth/v2/token")
    assert call.server == "eu"
    account = LinkedAccount.objects.get()
    assert (account.data_centre, account.accounts_server) == ("eu", zoho.eu_url)


def test_an_allow_listed_accounts_server(zoho, db):
    exchange("bigin", zoho.issue_code(server="eu"), "--accounts-server", zoho.eu_url + "/")
    assert LinkedAccount.objects.get().data_centre == "eu"


@pytest.mark.parametrize(
    "server",
    [
        "https://evil.example",
        "https://accounts.zoho.com",
        "http://127.0.0.1:1",
        "https://accounts.zoho.eu.evil.example",
    ],
)
def test_accounts_server_outside_the_allow_list_is_refused_before_sending(zoho, db, server):
    with pytest.raises(CommandError, match="not an accounts server this site trusts") as excinfo:
        exchange("bigin", zoho.issue_code(), "--accounts-server", server)
    assert "bigin-secret-value" not in str(excinfo.value)
    assert_nothing_happened(zoho)


def test_unknown_data_centre_is_refused_before_sending(zoho, db):
    with pytest.raises(CommandError, match="Unknown data centre 'xx'; known: eu, us"):
        exchange("bigin", zoho.issue_code(), "--data-centre", "xx")
    assert_nothing_happened(zoho)


def test_server_and_data_centre_together_are_refused(zoho, db):
    with pytest.raises(CommandError):
        exchange("bigin", zoho.issue_code(), "--data-centre", "eu", "--accounts-server", zoho.url)
    assert_nothing_happened(zoho)


def test_expired_or_used_code(zoho, db):
    code = zoho.issue_code()
    exchange("bigin", code)
    LinkedAccount.objects.all().delete()

    with pytest.raises(CommandError) as excinfo:
        exchange("bigin", code)  # Zoho: {"error": "invalid_code"} with HTTP 200

    message = str(excinfo.value)
    assert "invalid_code" in message and "single use" in message and "Generate a new code" in message
    assert code not in message
    assert "\n" not in message
    assert not LinkedAccount.objects.exists()


def test_wrong_data_centre(zoho, db):
    zoho.queue_reply(200, {"error": "invalid_client"})  # the client is registered in another DC
    with pytest.raises(CommandError, match="registered in another data centre"):
        exchange("bigin", zoho.issue_code())
    assert not LinkedAccount.objects.exists()


def test_wrong_client_secret(zoho, db):
    zoho.queue_reply(200, {"error": "invalid_client_secret"})
    with pytest.raises(CommandError, match="refused the client secret") as excinfo:
        exchange("bigin", zoho.issue_code())
    assert "bigin-secret-value" not in str(excinfo.value)
    assert not LinkedAccount.objects.exists()


def test_throttled(zoho, db):
    zoho.queue_reply(200, {"error": "Access Denied", "error_description": "too many requests", "status": "failure"})
    with pytest.raises(CommandError, match="try again"):
        exchange("bigin", zoho.issue_code())
    assert not LinkedAccount.objects.exists()


def test_missing_client_secret_is_refused_before_sending(zoho, db, settings):
    config = bigoauth_settings_for(zoho)
    config["PROVIDERS"]["bigin"]["CLIENT_SECRET"] = ""
    settings.BIGOAUTH = config
    with pytest.raises(CommandError, match="no CLIENT_SECRET"):
        exchange("bigin", zoho.issue_code())
    assert_nothing_happened(zoho)


def test_unknown_user_is_refused_before_sending(zoho, db):
    with pytest.raises(CommandError, match="No user with the username 'nobody'"):
        exchange("bigin", zoho.issue_code(), "--user", "nobody")
    assert_nothing_happened(zoho)


@pytest.mark.parametrize(
    ("provider", "message"), [("biggerplate", "Zoho feature"), ("acme", "No provider 'acme' is configured")]
)
def test_providers_without_self_clients(zoho, db, provider, message):
    with pytest.raises(CommandError, match=message):
        exchange(provider, "some-code")
    assert_nothing_happened(zoho)


def test_failure_exits_non_zero_with_one_line(zoho, db, capsys, monkeypatch):
    from django.core.management import base

    # run_from_argv closes every connection when done, which would end the test's transaction.
    monkeypatch.setattr(base.connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(
            ["manage.py", "bigoauth_exchange_code", "bigin", "1000.code.x", "--accounts-server", "https://evil.example"]
        )
    assert excinfo.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("CommandError: ") and err.count("\n") == 1
    assert_nothing_happened(zoho)


def test_relinking_the_same_organisation_updates_it(zoho, db):
    exchange("bigin", zoho.issue_code())
    output = exchange("bigin", zoho.issue_code())
    assert LinkedAccount.objects.count() == 1
    assert "linked again (updated)" in output
