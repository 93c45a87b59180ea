"""What a strict provider punishes, the app never does: each test here fails against a client that
sends a request to the wrong server, follows a redirect with the secret, ignores a revoke's
answer, loses a code's binding, or spends refreshes on 401s a refresh cannot cure.
"""

from __future__ import annotations

import logging

import pytest
from django.db import DatabaseError

from django_bigoauth import linking, store
from django_bigoauth.exceptions import AccountNotStored, ProviderError, ProviderUnavailable, RefreshError, RevokeError
from django_bigoauth.linking import link_with_code
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.providers import CallbackContext, get_provider
from tests.oauthflow import bigin_return, callback_url, code_for, nothing_stored, start

US = CallbackContext

pytestmark = pytest.mark.django_db


def eu_account(fake, make_account, **kwargs):
    """An account of Zoho's second data centre, whose grant only the eu accounts server knows."""
    return make_account(
        "bigin",
        accounts_server=fake.eu_url,
        refresh_token=fake.issue_refresh_token(server="eu"),
        api_domain=fake.api_url,
        **kwargs,
    )


# -- each request to its own server ------------------------------------------------------------------


def test_an_account_refreshes_and_revokes_at_its_own_data_centre(fake_provider, make_account):
    account = eu_account(fake_provider, make_account, expires_in=-10)
    assert account.get_access_token() in fake_provider.live_access_tokens
    assert account.revoke().confirmed
    assert [call.server for call in fake_provider.calls("/token")] == ["eu"]
    assert [call.server for call in fake_provider.calls("/revoke")] == ["eu"]
    assert fake_provider.live_refresh_tokens == frozenset()


def test_a_code_from_one_data_centre_is_refused_at_another(fake_provider):
    with pytest.raises(ProviderError):
        link_with_code(
            get_provider("bigin"),
            fake_provider.issue_code(server="eu"),
            user=None,
            redirect_uri=None,
            context=US(accounts_server=fake_provider.url, data_centre="us"),
        )
    assert nothing_stored()


def test_a_token_endpoint_that_redirects_is_not_followed(fake_provider, make_account):
    fake_provider.redirect_token_requests = True
    account = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token())
    with pytest.raises(RefreshError, match="redirect"):
        account.get_access_token()
    assert [call.server for call in fake_provider.requests] == ["us"]  # nothing reached the redirect's target


# -- revocation answers are read ---------------------------------------------------------------------


def test_a_revoke_answered_with_status_failure_changes_nothing(fake_provider, make_account):
    account = make_account("bigin", accounts_server=fake_provider.url)
    fake_provider.queue_reply(200, {"status": "failure"}, path_suffix="/revoke")
    with pytest.raises(RevokeError, match="did not confirm"):
        account.revoke()
    assert Token.objects.filter(account=account).exists()
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE


def test_revoking_a_refresh_token_kills_its_access_tokens_at_the_provider(fake_provider, make_account):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), expires_in=-5)
    access = account.get_access_token()
    assert access in fake_provider.live_access_tokens
    account.revoke()
    assert access not in fake_provider.live_access_tokens


def test_without_a_refresh_token_the_access_token_is_revoked_with_its_hint(fake_provider, make_account):
    fake_provider.adopt(access_token="1000.access.alone")
    account = make_account("bigin", access_token="1000.access.alone", refresh_token="")
    assert account.revoke().confirmed
    (call,) = fake_provider.calls("/revoke")
    assert (call.form["token"], call.form["token_type_hint"]) == ("1000.access.alone", "access_token")


# -- codes are bound to the authorisation request ---------------------------------------------------


@pytest.mark.parametrize("binding", ["redirect_uri", "client_id", "code_challenge"])
def test_a_code_bound_to_another_request_is_refused(signed_in, fake_provider, settings, binding):
    settings.BIGOAUTH["PROVIDERS"]["bigin"]["PKCE"] = True
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    authorised = start(signed_in, "bigin")
    other = {**authorised, binding: "something-else"}
    response = signed_in.get(
        callback_url("bigin"), bigin_return(fake_provider, authorised, code=code_for(fake_provider, other))
    )
    assert response.status_code == 502
    assert nothing_stored()


def test_the_pkce_verifier_matches_the_challenge_sent(signed_in, fake_provider, settings):
    settings.BIGOAUTH["PROVIDERS"]["bigin"]["PKCE"] = True
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    authorised = start(signed_in, "bigin")
    response = signed_in.get(callback_url("bigin"), bigin_return(fake_provider, authorised))
    assert response.status_code == 302
    assert LinkedAccount.objects.count() == 1


# -- a failed link revokes what it was given ----------------------------------------------------------


def issued_refresh_token(fake) -> str:
    (grant,) = [g for g in fake.grants if g.client_id]  # the one the exchange created
    return grant.refresh_token


def link(fake):
    return link_with_code(
        get_provider("bigin"),
        fake.issue_code(),
        user=None,
        redirect_uri=None,
        context=US(accounts_server=fake.url, data_centre="us"),
    )


def test_an_identity_lookup_that_fails_revokes_the_new_grant(fake_provider):
    fake_provider.queue_reply(503, "down", "text/plain", path_suffix="/org")
    with pytest.raises(ProviderUnavailable):
        link(fake_provider)
    (revoke,) = fake_provider.calls("/revoke")
    assert revoke.form["token"] == issued_refresh_token(fake_provider)
    assert revoke.form["token_type_hint"] == "refresh_token"
    assert fake_provider.live_refresh_tokens == frozenset()
    assert nothing_stored()


def test_a_reply_that_cannot_be_stored_revokes_the_new_grant(fake_provider):
    fake_provider.org_id = "x" * 300  # no external_id column holds it
    with pytest.raises(ProviderError, match="longer than"):
        link(fake_provider)
    assert len(fake_provider.calls("/revoke")) == 1
    assert fake_provider.live_refresh_tokens == frozenset()
    assert nothing_stored()


def test_a_database_that_refuses_the_write_revokes_the_new_grant(fake_provider, monkeypatch):
    def refuse(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(store, "store_link", refuse)
    with pytest.raises(AccountNotStored):
        link(fake_provider)
    assert len(fake_provider.calls("/revoke")) == 1
    assert fake_provider.live_refresh_tokens == frozenset()
    assert nothing_stored()


def test_a_revoke_that_fails_too_is_logged_never_shown(fake_provider, caplog, signed_in):
    caplog.set_level(logging.INFO, logger="django_bigoauth")
    fake_provider.queue_reply(503, "down", "text/plain", path_suffix="/org")
    fake_provider.queue_reply(500, "also down", "text/plain", path_suffix="/revoke")
    authorised = start(signed_in, "bigin")
    response = signed_in.get(callback_url("bigin"), bigin_return(fake_provider, authorised))
    assert response.status_code == 502
    assert "revok" not in response.content.decode().lower()
    assert any("revoking it failed" in record.getMessage() for record in caplog.records)
    assert nothing_stored()


def test_a_token_reply_that_is_refused_revokes_what_it_carried(fake_provider):
    """The exchange succeeded but its reply cannot be used (an API domain Zoho does not use)."""
    refresh = "1000.refresh." + "r" * 16
    fake_provider.adopt(access_token="1000.access.unused", refresh_token=refresh)
    fake_provider.queue_reply(
        200,
        {"access_token": "1000.access.unused", "refresh_token": refresh, "api_domain": "https://api.evil.example"},
    )
    with pytest.raises(ProviderError, match="does not use"):
        link(fake_provider)
    (revoke,) = fake_provider.calls("/revoke")
    assert revoke.form["token"] == refresh
    assert nothing_stored()


def test_linking_module_offers_no_second_revoke_path():
    assert not hasattr(linking, "revoke_unused_grant")  # one: client.revoke_unused_grant
