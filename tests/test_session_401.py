"""A 401 from the API may cost a refresh only when a refresh can help.

Zoho answers 401 to a scope the token lacks as well as to a dead token, and allows 10
refreshes per refresh token per 10 minutes: five calls that get 401 must not cost five.
"""

from __future__ import annotations

import pytest

from django_bigoauth.models import Token


@pytest.fixture
def account(fake_provider, make_account):
    return make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), api_domain=fake_provider.api_url)


def api_calls(fake):
    return [r for r in fake.requests if r.server == "api"]


def test_five_calls_answered_401_cost_at_most_one_refresh(fake_provider, account):
    fake_provider.api_accepts_tokens = False
    session = account.session()
    statuses = [session.get("/bigin/v2/org").status_code for _ in range(5)]
    statuses += [account.session().get("/bigin/v2/org").status_code for _ in range(5)]  # new sessions too
    assert statuses == [401] * 10
    assert fake_provider.refresh_calls() == 1


def test_a_401_after_the_interval_refreshes_again(fake_provider, account, settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "REFRESH_ON_401_INTERVAL": 0}
    fake_provider.api_accepts_tokens = False
    session = account.session()
    session.get("/bigin/v2/org")
    session.get("/bigin/v2/org")
    assert fake_provider.refresh_calls() == 2


def test_a_scope_mismatch_is_returned_without_a_refresh(fake_provider, account):
    token = Token.objects.get(account=account).access_token
    fake_provider.adopt(access_token=token).org_scope = False
    response = account.session().get("/bigin/v2/org")
    assert response.status_code == 401 and response.json()["code"] == "OAUTH_SCOPE_MISMATCH"
    assert fake_provider.refresh_calls() == 0
    assert len(api_calls(fake_provider)) == 1


def test_insufficient_scope_in_www_authenticate_is_returned_without_a_refresh(fake_provider, make_account):
    fake_provider.queue_reply(
        401,
        "",
        "text/plain",
        path_suffix="/users/me",
        headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
    )
    account = make_account("biggerplate", refresh_token=fake_provider.issue_refresh_token())
    assert account.session().get("/users/me").status_code == 401
    assert fake_provider.refresh_calls() == 0


def test_a_401_from_a_redirects_target_never_refreshes(fake_provider, account):
    fake_provider.queue_reply(
        302, "", "text/plain", path_suffix="/bigin/v2/moved", headers={"Location": f"{fake_provider.eu_url}/elsewhere"}
    )
    fake_provider.queue_reply(401, {"code": "INVALID_TOKEN"}, path_suffix="/elsewhere")
    response = account.session().get("/bigin/v2/moved")
    assert response.status_code == 401
    assert fake_provider.refresh_calls() == 0
    (elsewhere,) = fake_provider.calls("/elsewhere")
    assert "Authorization" not in elsewhere.headers  # requests drops it for another origin


def test_a_newer_token_stored_meanwhile_is_retried_without_a_refresh(fake_provider, account):
    from tests.lifecycle_support import overwrite_token

    fake_provider.adopt(access_token=Token.objects.get(account=account).access_token)
    session = account.session()
    assert session.get("/bigin/v2/org").status_code == 200  # the session keeps this token
    fake_provider.kill(Token.objects.get(account=account).access_token)  # dead at the provider
    fake_provider.adopt(access_token="1000.access.newer")
    overwrite_token(account, access_token="1000.access.newer", generation=5)  # another worker's refresh
    assert session.get("/bigin/v2/org").status_code == 200
    assert fake_provider.refresh_calls() == 0
    assert api_calls(fake_provider)[-1].headers["Authorization"] == "Zoho-oauthtoken 1000.access.newer"


def test_a_session_reads_the_token_once(fake_provider, account, django_assert_num_queries):
    fake_provider.adopt(access_token=Token.objects.get(account=account).access_token)
    session = account.session()
    with django_assert_num_queries(1):
        for _ in range(5):
            assert session.get("/bigin/v2/org").status_code == 200
