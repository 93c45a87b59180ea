"""``get_access_token()``: the hot path, a successful refresh, and every way a refresh can fail.

A transient failure must leave the stored token exactly as it was (compared as ciphertext);
a refused refresh token must move the account to "needs re-authorisation" once, loudly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_bigoauth import signals, tokens
from django_bigoauth.exceptions import (
    AccountRevoked,
    BigOAuthError,
    ReauthorizationRequired,
    RefreshError,
    TokenDecryptionError,
)
from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import closed_port_url, overwrite_token, raw_token_row

THROTTLED = {
    "error": "Access Denied",
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "status": "failure",
}


@pytest.fixture
def received():
    """Every signal of the token lifecycle sent during the test, as ``(name, kwargs)``."""
    log = []
    hooks = {
        "token_refreshed": signals.token_refreshed,
        "reauthorization_required": signals.reauthorization_required,
        "account_revoked": signals.account_revoked,
    }
    for name, signal in hooks.items():
        signal.connect(lambda name=name, **kwargs: log.append((name, kwargs)), weak=False, dispatch_uid=f"t-{name}")
    yield log
    for name, signal in hooks.items():
        signal.disconnect(dispatch_uid=f"t-{name}")


# -- the hot path ---------------------------------------------------------------------------


def test_fresh_token_costs_one_query_and_no_http(fake_provider, make_account, django_assert_num_queries):
    account = make_account("bigin", access_token="1000.access.fresh")
    with django_assert_num_queries(1):
        assert account.get_access_token() == "1000.access.fresh"
    assert fake_provider.requests == []


def test_token_without_expiry_is_used_until_the_provider_says_401(fake_provider, make_account):
    account = make_account("bigin", access_token="1000.access.forever")
    Token.objects.filter(account=account).update(expires_at=None)
    assert account.get_access_token() == "1000.access.forever"
    assert fake_provider.requests == []


# -- a successful refresh ---------------------------------------------------------------------


@pytest.mark.parametrize("expires_in", [-3600, 30], ids=["expired", "within-leeway"])
def test_stale_token_is_refreshed_once_and_stored(fake_provider, make_account, received, expires_in):
    refresh_token = fake_provider.issue_refresh_token()
    account = make_account("bigin", expires_in=expires_in, refresh_token=refresh_token)
    before = Token.objects.get(account=account)

    new_token = account.get_access_token()

    assert new_token in fake_provider.live_access_tokens
    stored = Token.objects.get(account=account)
    assert stored.access_token == new_token
    # Zoho's refresh reply carries no refresh token: the one we had is kept.
    assert stored.refresh_token == refresh_token
    assert stored.generation == before.generation + 1
    assert stored.expires_at > timezone.now() + timedelta(minutes=59)
    assert stored.refreshed_at is not None
    (call,) = fake_provider.calls(grant_type="refresh_token")
    assert call.form["refresh_token"] == refresh_token
    assert call.form["client_id"] == "1000.BIGIN" and call.form["client_secret"] == "bigin-secret-value"
    assert call.query == ""
    assert [name for name, _ in received] == ["token_refreshed"]
    assert received[0][1]["account"].pk == account.pk
    # The new token is fresh: the next call is the hot path again.
    assert account.get_access_token() == new_token
    assert fake_provider.refresh_calls() == 1


def test_new_refresh_token_in_the_reply_replaces_the_old_one(fake_provider, make_account):
    fake_provider.rotate_refresh_tokens = True
    old = fake_provider.issue_refresh_token()
    account = make_account("biggerplate", expires_in=-10, refresh_token=old)

    account.get_access_token()

    stored = Token.objects.get(account=account)
    assert stored.refresh_token != old
    assert stored.refresh_token in fake_provider.live_refresh_tokens
    assert old not in fake_provider.live_refresh_tokens


def test_forced_refresh_replaces_a_fresh_token(fake_provider, make_account, received):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token())
    new_token = account.refresh()
    assert new_token != "1000.access.initial"
    assert Token.objects.get(account=account).access_token == new_token
    assert fake_provider.refresh_calls() == 1
    assert [name for name, _ in received] == ["token_refreshed"]


def test_a_refresh_stored_by_someone_else_is_used_not_repeated(fake_provider, make_account):
    """``seen_generation``: the 401 path and the command pass the generation they saw."""
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token())
    seen = Token.objects.get(account=account).generation
    overwrite_token(account, access_token="1000.access.other", generation=seen + 1)

    assert tokens.refresh_access_token(account, force=True, seen_generation=seen) == "1000.access.other"
    assert fake_provider.refresh_calls() == 0


# -- transient failures: RefreshError, nothing changes -------------------------------------------


def _queue(status, body, content_type="application/json", delay=0.0):
    return lambda fake: fake.queue_reply(status, body, content_type=content_type, delay=delay)


TRANSIENT = {
    "http-500": _queue(500, "<html>Internal error</html>", "text/html"),
    "http-503-json": _queue(503, {"error": "temporarily_unavailable"}),
    "http-429": _queue(429, {"error": "too_many_requests"}),
    "zoho-throttle-200": _queue(200, THROTTLED),
    "zoho-throttle-400": _queue(400, THROTTLED),
    "not-json": _queue(200, "<html>maintenance</html>", "text/html"),
    "no-access-token": _queue(200, {"token_type": "Bearer"}),
}


@pytest.mark.parametrize("failure", list(TRANSIENT), ids=list(TRANSIENT))
def test_transient_failure_raises_refresh_error_and_keeps_the_token(fake_provider, make_account, received, failure):
    account = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token())
    before = raw_token_row(account)
    TRANSIENT[failure](fake_provider)

    with pytest.raises(RefreshError) as excinfo:
        account.get_access_token()

    assert isinstance(excinfo.value, BigOAuthError)
    assert raw_token_row(account) == before
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert fake_provider.refresh_calls() == 1
    assert received == []
    # It may pass: the next call tries again (and now succeeds).
    assert account.get_access_token() in fake_provider.live_access_tokens


def test_timeout_raises_refresh_error_and_keeps_the_token(fake_provider, make_account, settings, received):
    settings.BIGOAUTH = bigoauth_settings_for(fake_provider, HTTP_TIMEOUT=0.3)
    account = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token())
    before = raw_token_row(account)
    fake_provider.queue_reply(200, {"access_token": "1000.access.late", "expires_in": 3600}, delay=1.5)

    with pytest.raises(RefreshError, match="did not answer in time"):
        account.get_access_token()

    assert raw_token_row(account) == before
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert received == []


def test_unreachable_token_endpoint_raises_refresh_error_and_keeps_the_token(
    fake_provider, make_account, settings, received
):
    config = bigoauth_settings_for(fake_provider)
    config["PROVIDERS"]["bigin"]["TOKEN_URL"] = f"{closed_port_url()}/oauth/v2/token"
    settings.BIGOAUTH = config
    account = make_account("bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token())
    before = raw_token_row(account)

    with pytest.raises(RefreshError, match="could not be reached"):
        account.get_access_token()

    assert raw_token_row(account) == before
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert received == []


# -- a refused refresh token: needs re-authorisation ------------------------------------------------


REFUSED = {
    "invalid_grant-400": lambda fake: None,  # the fake refuses refresh tokens it did not issue
    "zoho-invalid_code-200": _queue(200, {"error": "invalid_code"}),
}


@pytest.mark.parametrize("refusal", list(REFUSED), ids=list(REFUSED))
def test_refused_refresh_token_needs_reauthorisation(fake_provider, make_account, received, refusal):
    account = make_account("bigin", expires_in=-10, refresh_token="1000.refresh.unknown-to-the-provider")
    before = raw_token_row(account)
    REFUSED[refusal](fake_provider)

    with pytest.raises(ReauthorizationRequired):
        account.get_access_token()

    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.NEEDS_REAUTH
    assert raw_token_row(account) == before
    assert [name for name, _ in received] == ["reauthorization_required"]
    assert received[0][1]["account"].pk == account.pk
    # Later calls fail fast: no second request, no second signal.
    with pytest.raises(ReauthorizationRequired):
        account.get_access_token()
    with pytest.raises(ReauthorizationRequired):
        account.refresh()
    assert fake_provider.refresh_calls() == 1
    assert len(received) == 1


def test_account_without_refresh_token_needs_reauthorisation(fake_provider, make_account, received):
    account = make_account("bigin", expires_in=-10, refresh_token="")
    with pytest.raises(ReauthorizationRequired, match="no refresh token"):
        account.get_access_token()
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.NEEDS_REAUTH
    assert [name for name, _ in received] == ["reauthorization_required"]
    assert fake_provider.requests == []


# -- accounts that cannot give a token ----------------------------------------------------------------


def test_revoked_account_raises(fake_provider, make_account):
    account = make_account("bigin", status=LinkedAccount.Status.REVOKED)
    with pytest.raises(AccountRevoked):
        account.get_access_token()
    Token.objects.filter(account=account).delete()
    with pytest.raises(AccountRevoked):
        LinkedAccount.objects.get(pk=account.pk).get_access_token()
    assert fake_provider.requests == []


def test_undecryptable_token_names_the_account(fake_provider, make_account, settings):
    account = make_account("bigin")
    settings.BIGOAUTH = bigoauth_settings_for(
        fake_provider, ENCRYPTION_KEYS=["Wm8xdGhGOVd4cW1yTmlKS2t1b0FVR3lYc2hhbjlZS3M="]
    )
    with pytest.raises(TokenDecryptionError, match=f"account {account.pk} ") as excinfo:
        account.get_access_token()
    assert "1000." not in str(excinfo.value)


def test_every_exception_derives_from_bigoautherror():
    from django_bigoauth import exceptions

    classes = [
        value
        for value in vars(exceptions).values()
        if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == exceptions.__name__
    ]
    assert len(classes) > 5
    assert all(issubclass(cls, exceptions.BigOAuthError) for cls in classes)
