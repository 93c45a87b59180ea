"""Reading token replies: every way a provider answers, mapped to one exception or one TokenReply."""

import json

import pytest
import requests
import responses

from django_bigoauth import client
from django_bigoauth.exceptions import (
    InvalidGrant,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from django_bigoauth.providers import get_provider
from django_bigoauth.transport import get_transport

ZOHO_TOKEN = "https://accounts.zoho.com/oauth/v2/token"
BP_TOKEN = "https://accounts.biggerplate.com/oauth/token"


def sent_form(call):
    from urllib.parse import parse_qs

    return {key: values[0] for key, values in parse_qs(call.request.body).items()}


@responses.activate
def test_code_exchange_puts_credentials_in_the_form_body():
    responses.post(
        BP_TOKEN,
        json={
            "access_token": "at",
            "token_type": "Bearer",
            "expires_in": 3600,
            "expires": 1441738946,
            "refresh_token": "rt",
        },
    )
    reply = client.exchange_code(get_provider("biggerplate"), "the-code", redirect_uri="https://site/cb/")
    call = responses.calls[0]
    assert sent_form(call) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "https://site/cb/",
        "response_type": "token",
        "client_id": "bp-client",
        "client_secret": "bp-secret-value",
    }
    assert "Authorization" not in call.request.headers  # no HTTP Basic
    assert "?" not in call.request.url  # nothing in the query string
    assert (reply.access_token, reply.refresh_token) == ("at", "rt")


@responses.activate
def test_self_client_exchange_sends_no_redirect_uri():
    responses.post(
        ZOHO_TOKEN,
        json={
            "access_token": "at",
            "refresh_token": "rt",
            "expires_in": 3600,
            "api_domain": "https://www.zohoapis.com",
        },
    )
    client.exchange_code(get_provider("bigin"), "1000.code", redirect_uri=None)
    assert "redirect_uri" not in sent_form(responses.calls[0])


@responses.activate
def test_refresh_uses_the_accounts_server_of_the_account():
    responses.post("https://accounts.zoho.eu/oauth/v2/token", json={"access_token": "new", "expires_in": 3600})
    reply = client.refresh(get_provider("bigin"), "1000.rt", accounts_server="https://accounts.zoho.eu")
    assert sent_form(responses.calls[0])["grant_type"] == "refresh_token"
    assert reply.refresh_token is None


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, {"error": "invalid_code"}, "application/json", InvalidGrant),
        (400, {"error": "invalid_grant"}, "application/json", InvalidGrant),
        (200, {"error": "invalid_client"}, "application/json", ProviderError),
        (
            200,
            {"error": "Access Denied", "error_description": "too many requests"},
            "application/json",
            ProviderUnavailable,
        ),
        (400, {"error": "Access Denied"}, "application/json", ProviderUnavailable),
        (400, {}, "application/json", ProviderError),
        (500, "oops", "text/plain", ProviderUnavailable),
        (503, {"error": "invalid_code"}, "application/json", ProviderUnavailable),
        (429, "slow down", "text/plain", ProviderUnavailable),
        (200, "<html>login</html>", "text/html", ProviderError),
        (200, '{"access_token": ', "application/json", ProviderError),
        (200, ["access_token"], "application/json", ProviderError),
        (200, {"token_type": "Bearer"}, "application/json", ProviderError),
        (200, {"access_token": "a", "expires_in": "soon"}, "application/json", ProviderError),
    ],
)
@responses.activate
def test_bad_replies_raise_the_matching_error(status, body, content_type, expected):
    text = body if isinstance(body, str) else json.dumps(body)
    responses.post(ZOHO_TOKEN, body=text, status=status, content_type=content_type)
    with pytest.raises(expected) as excinfo:
        client.exchange_code(get_provider("bigin"), "1000.secret-code", redirect_uri="https://site/cb/")
    assert type(excinfo.value) is expected
    assert "secret-code" not in str(excinfo.value)
    assert "bigin-secret-value" not in str(excinfo.value)


@responses.activate
def test_timeout_and_connection_errors():
    responses.post(ZOHO_TOKEN, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderTimeout):
        client.refresh(get_provider("bigin"), "1000.rt")
    responses.replace(responses.POST, ZOHO_TOKEN, body=requests.ConnectionError(f"failed {ZOHO_TOKEN}?code=1000.x"))
    with pytest.raises(ProviderUnavailable) as excinfo:
        client.refresh(get_provider("bigin"), "1000.rt")
    assert "1000.x" not in str(excinfo.value)


@responses.activate
def test_every_call_has_the_configured_timeout(settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "HTTP_TIMEOUT": 2.5}
    responses.post(ZOHO_TOKEN, json={"access_token": "a"})
    seen = {}
    session = get_transport().session
    original = session.request

    def spy(*args, **kwargs):
        seen["timeout"] = kwargs.get("timeout")
        seen["allow_redirects"] = kwargs.get("allow_redirects")
        return original(*args, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(session, "request", spy):
        client.refresh(get_provider("bigin"), "1000.rt")
    # (connect, read) per operation; the watchdog holds the whole exchange to the same bound.
    assert seen == {"timeout": (2.5, 2.5), "allow_redirects": False}


def test_plain_http_off_loopback_is_refused_before_sending(settings):
    settings.BIGOAUTH = {
        "PROVIDERS": {
            "biggerplate": {"CLIENT_ID": "c", "CLIENT_SECRET": "s", "TOKEN_URL": "http://tokens.example.com/token"}
        }
    }
    with responses.RequestsMock() as mock:  # any request would fail the test: none registered
        with pytest.raises(ProviderError, match="plain HTTP"):
            client.refresh(get_provider("biggerplate"), "rt")
        assert len(mock.calls) == 0
