"""``account.session()``: the provider's header, the account's API base, refresh before and after a 401."""

from __future__ import annotations

import pytest
import responses

from django_bigoauth.exceptions import ReauthorizationRequired, UnsafeURL
from django_bigoauth.models import Token
from tests.fakeprovider import bigoauth_settings_for


def live_token(fake) -> str:
    """An access token the fake's API accepts."""
    token = "1000.access.live-" + str(len(fake.live_access_tokens))
    fake.adopt(access_token=token)
    return token


def api_calls(fake):
    return [r for r in fake.requests if not r.path.endswith(("token", "revoke"))]


# -- header scheme and base URL --------------------------------------------------------------------


def test_bigin_sends_zoho_oauthtoken_to_the_stored_api_domain(fake_provider, make_account):
    token = live_token(fake_provider)
    account = make_account("bigin", access_token=token, api_domain=fake_provider.api_url)

    response = account.session().get("/bigin/v2/org")

    assert response.status_code == 200
    assert response.json()["org"][0]["id"] == "org-1"
    (call,) = api_calls(fake_provider)
    assert call.path == "/bigin/v2/org"
    assert call.headers["Authorization"] == f"Zoho-oauthtoken {token}"


def test_bigin_api_base_is_the_accounts_api_domain_not_the_data_centre_default(make_account, settings):
    settings.BIGOAUTH = {"PROVIDERS": {"bigin": {"CLIENT_ID": "x", "CLIENT_SECRET": "y", "DATA_CENTRE": "us"}}}
    eu = make_account("bigin", api_domain="https://www.zohoapis.eu", external_id="eu")
    unknown = make_account("bigin", api_domain="", external_id="none")
    assert eu.session().resolve("/bigin/v2/org") == "https://www.zohoapis.eu/bigin/v2/org"
    assert unknown.session().resolve("bigin/v2/org") == "https://www.zohoapis.com/bigin/v2/org"


def test_biggerplate_sends_bearer_to_api_base_url(fake_provider, make_account):
    token = live_token(fake_provider)
    account = make_account("biggerplate", access_token=token, api_domain="https://ignored.example")

    response = account.session().get("/users/me")

    assert response.status_code == 200
    (call,) = api_calls(fake_provider)
    assert call.path == "/users/me"
    assert call.headers["Authorization"] == f"Bearer {token}"


def test_empty_auth_header_format_sends_the_bare_token(fake_provider, make_account, settings):
    config = bigoauth_settings_for(fake_provider)
    config["PROVIDERS"]["biggerplate"]["AUTH_HEADER_FORMAT"] = ""
    settings.BIGOAUTH = config
    token = live_token(fake_provider)
    account = make_account("biggerplate", access_token=token)

    assert account.session().get("/users/me").status_code == 200
    (call,) = api_calls(fake_provider)
    assert call.headers["Authorization"] == token


def test_relative_paths_keep_a_path_prefix_of_the_api_base(make_account, settings):
    settings.BIGOAUTH = {
        "PROVIDERS": {
            "biggerplate": {"CLIENT_ID": "x", "CLIENT_SECRET": "y", "API_BASE_URL": "https://api.example.com/v2/"}
        }
    }
    session = make_account("biggerplate").session()
    assert session.resolve("/users/me") == "https://api.example.com/v2/users/me"
    assert session.resolve("users/me") == "https://api.example.com/v2/users/me"
    assert session.resolve("https://api.example.com/v1/legacy") == "https://api.example.com/v1/legacy"
    with pytest.raises(UnsafeURL, match="other.example.com"):
        session.resolve("https://other.example.com/x")


def test_a_token_is_never_sent_to_another_host(fake_provider, make_account):
    account = make_account("bigin", access_token=live_token(fake_provider), api_domain=fake_provider.api_url)
    with pytest.raises(UnsafeURL):
        account.session().get("http://localhost:1/steal")  # loopback, so only the origin check stops it
    with pytest.raises(UnsafeURL):
        account.session().get(fake_provider.api_url.replace("127.0.0.1", "localhost") + "/bigin/v2/org")
    assert fake_provider.requests == []
    assert account.session().get(f"{fake_provider.api_url}/bigin/v2/org").status_code == 200


def test_plain_http_off_loopback_is_refused_before_sending(fake_provider, make_account, settings):
    account = make_account("bigin", api_domain="http://api.example.com")
    with pytest.raises(UnsafeURL, match="not an API domain of Bigin"):
        account.session().get("/bigin/v2/org")
    settings.BIGOAUTH["PROVIDERS"]["biggerplate"]["API_BASE_URL"] = "http://api.example.com"
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    maps = make_account("biggerplate", external_id="bp")
    with pytest.raises(UnsafeURL, match="not HTTPS"):
        maps.session().get("/users/me")
    assert fake_provider.requests == []


def test_the_callers_headers_are_kept(fake_provider, make_account):
    account = make_account("bigin", access_token=live_token(fake_provider), api_domain=fake_provider.api_url)
    account.session().get("/bigin/v2/org", headers={"X-Trace": "abc"})
    (call,) = api_calls(fake_provider)
    assert call.headers["X-Trace"] == "abc"


# -- refresh before and after -------------------------------------------------------------------------


def test_stale_token_is_refreshed_before_the_request(fake_provider, make_account):
    account = make_account(
        "bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token(), api_domain=fake_provider.api_url
    )

    response = account.session().get("/bigin/v2/org")

    assert response.status_code == 200
    assert [r.path for r in fake_provider.requests] == ["/oauth/v2/token", "/bigin/v2/org"]
    new_token = Token.objects.get(account=account).access_token
    assert fake_provider.requests[1].headers["Authorization"] == f"Zoho-oauthtoken {new_token}"


def test_401_forces_one_refresh_and_one_retry(fake_provider, make_account):
    # Not expired by the clock, but the provider no longer accepts it (revoked, expired early).
    account = make_account(
        "bigin",
        access_token="1000.access.dead",
        refresh_token=fake_provider.issue_refresh_token(),
        api_domain=fake_provider.api_url,
    )

    response = account.session().get("/bigin/v2/org")

    assert response.status_code == 200
    assert fake_provider.refresh_calls() == 1
    first, retry = api_calls(fake_provider)
    assert first.headers["Authorization"] == "Zoho-oauthtoken 1000.access.dead"
    new_token = Token.objects.get(account=account).access_token
    assert retry.headers["Authorization"] == f"Zoho-oauthtoken {new_token}"


def test_second_401_is_returned_without_another_refresh(fake_provider, make_account):
    fake_provider.api_accepts_tokens = False
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), api_domain=fake_provider.api_url)

    response = account.session().get("/bigin/v2/org")

    assert response.status_code == 401
    assert fake_provider.refresh_calls() == 1
    assert len(api_calls(fake_provider)) == 2


def test_401_with_a_dead_refresh_token_raises_reauthorization_required(fake_provider, make_account, monkeypatch):
    account = make_account(
        "bigin", access_token="1000.access.dead", refresh_token="1000.refresh.dead", api_domain=fake_provider.api_url
    )
    with pytest.raises(ReauthorizationRequired):
        account.session().get("/bigin/v2/org")
    assert len(api_calls(fake_provider)) == 1


@responses.activate
def test_post_body_is_sent_again_on_the_retry(make_account, settings):
    """Unit test with mocked HTTP: the retry repeats the method, URL and body."""
    settings.BIGOAUTH = {
        "PROVIDERS": {
            "biggerplate": {
                "CLIENT_ID": "bp",
                "CLIENT_SECRET": "s",
                "TOKEN_URL": "https://auth.example.com/token",
                "API_BASE_URL": "https://api.example.com",
            }
        }
    }
    responses.post("https://auth.example.com/token", json={"access_token": "new-token", "expires_in": 3600})
    responses.post("https://api.example.com/maps", status=401)
    responses.post("https://api.example.com/maps", status=201, json={"id": 7})
    account = make_account("biggerplate", access_token="old-token", refresh_token="rt")

    response = account.session().post("/maps", json={"title": "Plan"})

    assert response.status_code == 201
    first, refresh, retry = responses.calls
    assert first.request.headers["Authorization"] == "Bearer old-token"
    assert "grant_type=refresh_token" in refresh.request.body
    assert retry.request.headers["Authorization"] == "Bearer new-token"
    assert retry.request.body == first.request.body == b'{"title": "Plan"}'
