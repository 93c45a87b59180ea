"""Standard servers from settings alone, against a strict stub OpenID Connect provider on 127.0.0.1.

The sandbox (a real django-oauth-toolkit server, ``test_oidc_sandbox.py``) shows the happy path;
this stub shows every way it can go wrong: discovery documents that lie or do not come, ID
tokens that are forged, expired, for someone else or for another sign-in, callbacks from
another server. Each ends in a 400 (nothing sent) or a 502/504 (nothing stored).
"""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_bigoauth import discovery
from django_bigoauth.checks import check_discovery, check_settings
from django_bigoauth.models import LinkedAccount, PendingAuthorisation, Token
from django_bigoauth.providers import get_provider
from django_bigoauth.providers.generic import OAuth2Provider, OpenIDConnectProvider
from django_bigoauth.transport import Transport
from tests.oauthflow import callback_url, nothing_stored, start
from tests.oidcstub import CLIENT_ID, OIDCStub

pytestmark = pytest.mark.django_db

KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="


class RecordingTransport(Transport):
    """The app's transport, recording every URL it is asked to fetch: discovery and keys go through it too."""

    urls: list[str] = []

    def request(self, method, url, **kwargs):
        RecordingTransport.urls.append(url)
        return super().request(method, url, **kwargs)


def configure(settings, stub: OIDCStub | None = None, **entry):
    providers = {"acme": stub.settings_entry(**entry)} if stub else {"acme": entry}
    settings.BIGOAUTH = {
        "PROVIDERS": providers,
        "ENCRYPTION_KEYS": [KEY],
        "HTTP_TIMEOUT": 2,
        "TRANSPORT": "tests.test_oidc.RecordingTransport",
    }


@pytest.fixture
def stub(settings):
    oidc = OIDCStub().start()
    RecordingTransport.urls.clear()
    configure(settings, oidc)
    yield oidc
    oidc.stop()


def come_back(client, stub: OIDCStub, authorised: dict[str, str], **overrides):
    params = {"state": authorised["state"], "code": stub.issue_code(authorised), "iss": stub.issuer, **overrides}
    return client.get(callback_url("acme"), {k: v for k, v in params.items() if v is not None})


def error_text(response) -> str:
    return response.content.decode()


# -- the happy path, from settings alone -------------------------------------------------------------


def test_an_issuer_alone_links_an_account_with_its_id_token(signed_in, stub):
    authorised = start(signed_in, "acme")

    assert isinstance(get_provider("acme"), OpenIDConnectProvider)
    assert authorised["scope"] == "openid offline_access"
    assert authorised["prompt"] == "consent"  # offline_access is dropped without it (OIDC Core 11)
    assert authorised["code_challenge_method"] == "S256" and authorised["code_challenge"]
    assert len(authorised["nonce"]) >= 43
    pending = PendingAuthorisation.objects.get()
    assert pending.nonce and authorised["nonce"] not in pending.nonce  # only its digest is kept

    response = come_back(signed_in, stub, authorised)

    assert response.status_code == 302, error_text(response)
    account = LinkedAccount.objects.get()
    assert (account.provider, account.external_id, account.label) == ("acme", "user-42", "ann@example.com")
    assert Token.objects.get(account=account).refresh_token in stub.live_refresh_tokens
    assert len(stub.calls("/userinfo")) == 0  # the ID token named the account
    # Discovery and keys went through the app's transport, and only to the stub.
    assert {urlsplit(url).netloc for url in RecordingTransport.urls} == {urlsplit(stub.url).netloc}


def test_discovery_is_fetched_once_and_then_cached(signed_in, stub):
    for _ in range(3):
        start(signed_in, "acme")
    assert len(stub.calls("/openid-configuration")) == 1


def test_discovery_is_shared_through_djangos_cache_when_one_is_configured(signed_in, stub, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "oidc"}}
    start(signed_in, "acme")
    discovery.clear_cache()  # another worker: nothing in its own memory
    start(signed_in, "acme")
    assert len(stub.calls("/openid-configuration")) == 1


def test_discovery_cache_is_bounded_in_time(signed_in, stub, settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "DISCOVERY_TTL": 0.3}
    start(signed_in, "acme")
    start(signed_in, "acme")
    assert len(stub.calls("/openid-configuration")) == 1
    time.sleep(0.4)
    start(signed_in, "acme")
    assert len(stub.calls("/openid-configuration")) == 2


def test_refresh_and_revoke_use_the_discovered_endpoints(signed_in, stub):
    response = come_back(signed_in, stub, start(signed_in, "acme"))
    assert response.status_code == 302
    account = LinkedAccount.objects.get()
    Token.objects.filter(account=account).update(expires_at=timezone.now() - timedelta(seconds=5))
    old_refresh = Token.objects.get(account=account).refresh_token

    account.get_access_token()

    assert len(stub.calls("/token")) == 2  # the exchange and one refresh
    new_refresh = Token.objects.get(account=account).refresh_token
    assert new_refresh != old_refresh and new_refresh in stub.live_refresh_tokens  # rotated

    result = account.revoke()

    assert result.confirmed and stub.revoked == [new_refresh]
    assert not stub.live_refresh_tokens


def test_without_an_id_token_the_identity_is_userinfos_sub(signed_in, stub, settings):
    stub.id_token_mode = "missing"
    configure(settings, stub, SCOPES=["offline_access"])  # no openid: no ID token is asked for
    authorised = start(signed_in, "acme")
    assert "nonce" not in authorised

    response = come_back(signed_in, stub, authorised)

    assert response.status_code == 302, error_text(response)
    assert LinkedAccount.objects.get().external_id == "user-42"
    assert len(stub.calls("/userinfo")) == 1


def test_a_server_with_rfc_8414_metadata_only(signed_in, stub, settings):
    stub.openid_configuration = False
    authorised = start(signed_in, "acme")
    assert len(stub.calls("/.well-known/oauth-authorization-server")) == 1
    response = come_back(signed_in, stub, authorised)
    assert response.status_code == 302, error_text(response)


def test_explicit_endpoints_win_over_discovered_ones(stub, settings):
    configure(settings, stub, AUTHORIZE_URL="https://login.example.com/auth", API_BASE_URL="https://api.example.com")
    provider = get_provider("acme")
    assert provider.get_authorize_url() == "https://login.example.com/auth"
    assert provider.get_token_url() == f"{stub.issuer}/token"
    assert provider.get_api_base_url() == "https://api.example.com"


# -- discovery that fails: a page at authorise time, nothing stored ---------------------------------------


def assert_refused_at_authorise(response, status: int) -> None:
    assert response.status_code == status, error_text(response)
    assert not PendingAuthorisation.objects.exists()
    assert nothing_stored()


def authorise(client):
    return client.post("/bigoauth/acme/authorise/")


def test_a_document_naming_another_issuer_is_not_used(signed_in, stub):
    stub.document = {"issuer": stub.issuer + "/"}  # not exactly equal: a trailing slash is another issuer
    response = authorise(signed_in)
    assert_refused_at_authorise(response, 502)
    assert "sign-in settings" in error_text(response)
    assert [urlsplit(url).path for url in RecordingTransport.urls] == ["/op/.well-known/openid-configuration"]


def test_a_document_with_plain_http_endpoints_off_loopback_is_not_used(signed_in, stub):
    stub.document = {"token_endpoint": "http://tokens.example.com/token"}
    assert_refused_at_authorise(authorise(signed_in), 502)
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in RecordingTransport.urls)


def test_an_unreachable_issuer_is_a_502(signed_in, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(settings, ISSUER=f"http://127.0.0.1:{port}/op", CLIENT_ID="c", CLIENT_SECRET="s")
    assert_refused_at_authorise(authorise(signed_in), 502)


def test_a_slow_issuer_is_a_504(signed_in, stub, settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "HTTP_TIMEOUT": 0.5}
    stub.discovery_delay = 2
    started = time.monotonic()
    response = authorise(signed_in)
    assert time.monotonic() - started < 1.9
    assert_refused_at_authorise(response, 504)
    assert "did not answer in time" in error_text(response)


def test_an_issuer_with_no_metadata_at_all_is_a_502(signed_in, stub):
    stub.openid_configuration = False
    stub.document = {"issuer": "https://elsewhere.example.com"}
    assert_refused_at_authorise(authorise(signed_in), 502)


# -- RFC 9207: the callback's iss ----------------------------------------------------------------------


def test_a_callback_from_another_issuer_is_refused_before_anything_is_sent(signed_in, stub):
    authorised = start(signed_in, "acme")
    sent = len(stub.requests)

    response = come_back(signed_in, stub, authorised, iss="https://attacker.example.com")

    assert response.status_code == 400
    assert "another server" in error_text(response)
    assert nothing_stored() and len(stub.requests) == sent


def test_a_callback_without_iss_is_refused_when_the_server_promises_one(signed_in, stub):
    authorised = start(signed_in, "acme")
    sent = len(stub.requests)

    response = come_back(signed_in, stub, authorised, iss=None)

    assert response.status_code == 400
    assert nothing_stored() and len(stub.requests) == sent


def test_a_callback_without_iss_is_fine_when_the_server_does_not_send_it(signed_in, stub):
    stub.iss_parameter_supported = False
    response = come_back(signed_in, stub, start(signed_in, "acme"), iss=None)
    assert response.status_code == 302, error_text(response)


# -- ID tokens that must not be believed: 502, nothing stored, the new grant revoked ---------------------


@pytest.mark.parametrize(
    ("mode", "claims", "reason"),
    [
        ("bad-signature", {}, "signature that does not verify"),
        ("none", {}, "'none'"),
        ("hs256", {}, "'HS256'"),
        ("unknown-key", {}, "key the issuer does not publish"),
        ("", {"aud": "another-client"}, "another client (aud)"),
        ("", {"aud": [CLIENT_ID, "another-client"]}, "no authorised party (azp)"),
        ("", {"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}, "another client (azp)"),
        ("", {"iss": "https://attacker.example.com"}, "another issuer (iss)"),
        ("", {"exp": int(time.time()) - 120, "iat": int(time.time()) - 600}, "expired"),
        ("", {"iat": int(time.time()) + 600, "exp": int(time.time()) + 900}, "in the future"),
        ("", {"nonce": None}, "no nonce"),
        ("", {"nonce": "another-sign-ins-nonce"}, "another sign-in's nonce"),
        ("", {"sub": None}, "'sub'"),
        ("missing", {}, "no ID token"),
    ],
)
def test_an_id_token_that_fails_validation_is_a_502_and_nothing_is_stored(
    signed_in, stub, caplog, mode, claims, reason
):
    stub.id_token_mode = mode
    stub.id_token_claims = claims
    authorised = start(signed_in, "acme")

    response = come_back(signed_in, stub, authorised)

    assert response.status_code == 502, error_text(response)
    assert nothing_stored()
    assert len(stub.revoked) == 1 and stub.revoked[0] not in stub.live_refresh_tokens  # the grant is ended
    assert reason in caplog.text  # logged with its reason, never the token
    assert "eyJ" not in caplog.text and authorised["nonce"] not in caplog.text


def test_a_rotated_signing_key_is_fetched_once(signed_in, stub, alice, client, django_user_model):
    assert come_back(signed_in, stub, start(signed_in, "acme")).status_code == 302
    assert len(stub.calls("/jwks")) == 1
    stub.rotate_keys()

    bob = django_user_model.objects.create_user("bob")
    client.force_login(bob)
    response = come_back(client, stub, start(client, "acme"))

    assert response.status_code == 302, error_text(response)
    assert len(stub.calls("/jwks")) == 2  # the cached set lacked the new kid: fetched again, once
    assert LinkedAccount.objects.count() == 2


def test_an_unknown_key_costs_one_refetch_only(signed_in, stub):
    stub.id_token_mode = "unknown-key"
    assert come_back(signed_in, stub, start(signed_in, "acme")).status_code == 502
    assert len(stub.calls("/jwks")) == 2  # once cold, once for the unknown kid: never a loop


def test_es256_id_tokens_are_accepted(signed_in, settings):
    oidc = OIDCStub(algorithm="ES256").start()
    try:
        configure(settings, oidc)
        response = come_back(signed_in, oidc, start(signed_in, "acme"))
        assert response.status_code == 302, error_text(response)
    finally:
        oidc.stop()


# -- EXTRA_AUTHORIZE_PARAMS -----------------------------------------------------------------------------


def test_extra_authorize_params_are_sent_and_may_change_prompt(signed_in, stub, settings):
    configure(settings, stub, EXTRA_AUTHORIZE_PARAMS={"prompt": "login consent", "ui_locales": "en-GB"})
    authorised = start(signed_in, "acme")
    assert authorised["prompt"] == "login consent" and authorised["ui_locales"] == "en-GB"


def test_extra_authorize_params_cannot_override_the_state_a_check_says_so(signed_in, stub, settings):
    configure(settings, stub, EXTRA_AUTHORIZE_PARAMS={"state": "fixed", "redirect_uri": "https://evil.example/"})
    (message,) = [m for m in check_settings() if m.id == "django_bigoauth.E013"]
    assert "redirect_uri, state" in message.msg

    authorised = start(signed_in, "acme")  # and they are not sent: the flow's own values are
    assert authorised["state"] != "fixed" and authorised["redirect_uri"].endswith("/bigoauth/acme/callback/")


@pytest.mark.parametrize("extra", [["prompt"], {"prompt": 1}, "prompt=login"])
def test_extra_authorize_params_must_be_a_dict_of_strings(stub, settings, extra):
    configure(settings, stub, EXTRA_AUTHORIZE_PARAMS=extra)
    assert [m.id for m in check_settings()] == ["django_bigoauth.E013"]


# -- the system checks never fetch; check --deploy does ---------------------------------------------------


def test_an_issuer_entry_is_clean_and_check_sends_nothing(stub, outbound):
    assert check_settings() == []  # ISSUER is a key the provider declares: no W002
    assert outbound == []


def test_check_deploy_warns_when_discovery_fails(stub):
    stub.document = {"issuer": "https://elsewhere.example.com"}
    (message,) = check_discovery()
    assert message.id == "django_bigoauth.W004" and "elsewhere.example.com" in message.msg
    assert "ISSUER" in message.hint


def test_check_deploy_is_quiet_when_discovery_works(stub):
    assert check_discovery() == []


def test_manage_check_with_an_unreachable_issuer_neither_fails_nor_waits(settings, outbound):
    configure(settings, ISSUER="https://login.example.com", CLIENT_ID="c", CLIENT_SECRET="s")
    call_command("check")  # no exception, no HTTP
    assert outbound == []


@pytest.mark.parametrize(
    ("issuer", "check_id"),
    [
        ("http://login.example.com", "django_bigoauth.E007"),
        ("https://login.example.com/?tenant=1", "django_bigoauth.E006"),
        ("login.example.com", "django_bigoauth.E006"),
    ],
)
def test_a_bad_issuer_is_a_configuration_error(settings, issuer, check_id):
    configure(settings, ISSUER=issuer, CLIENT_ID="c", CLIENT_SECRET="s")
    assert [m.id for m in check_settings()] == [check_id]


def test_an_entry_with_neither_class_issuer_nor_both_endpoints_is_unknown(settings):
    configure(settings, AUTHORIZE_URL="https://login.example.com/auth", CLIENT_ID="c", CLIENT_SECRET="s")
    assert [m.id for m in check_settings()] == ["django_bigoauth.E004"]


def test_zoho_keys_are_unknown_to_a_standard_provider(stub, settings):
    configure(settings, stub, DATA_CENTRE="eu")
    (message,) = check_settings()
    assert message.id == "django_bigoauth.W002" and "'DATA_CENTRE'" in message.msg and "ISSUER" in message.hint


# -- a plain OAuth 2.0 server from settings ------------------------------------------------------------------


def test_a_plain_oauth2_server_from_its_endpoints(signed_in, fake_provider, settings):
    settings.BIGOAUTH = {
        "PROVIDERS": {
            "acme": {
                "AUTHORIZE_URL": f"{fake_provider.url}/oauth/auth",
                "TOKEN_URL": f"{fake_provider.url}/oauth/token",
                "IDENTITY_URL": f"{fake_provider.api_url}/me",
                "IDENTITY_FIELD": "Id",
                "CLIENT_ID": "acme-client",
                "CLIENT_SECRET": "acme-secret-value",
            }
        },
        "ENCRYPTION_KEYS": [KEY],
    }
    assert check_settings() == []
    provider = get_provider("acme")
    assert type(provider) is OAuth2Provider and not provider.supports_revoke and not provider.id_tokens
    authorised = start(signed_in, "acme")
    assert "nonce" not in authorised and "scope" not in authorised and authorised["code_challenge"]
    code = fake_provider.issue_code(
        client_id="acme-client", redirect_uri=authorised["redirect_uri"], code_challenge=authorised["code_challenge"]
    )

    response = signed_in.get(callback_url("acme"), {"state": authorised["state"], "code": code})

    assert response.status_code == 302
    assert LinkedAccount.objects.get().external_id == fake_provider.org_id


@pytest.mark.parametrize(
    ("field", "data", "expected"),
    [
        ("id", {"id": 7, "name": "Ann"}, ("7", "Ann")),
        ("data.user.id", {"data": {"user": {"id": "u1", "login": "ann"}}}, ("u1", "ann")),
        ("id", {"id": True}, None),
        ("id", {"id": ""}, None),
        ("id", ["id"], None),
        ("data.id", {"data": "x"}, None),
    ],
)
def test_identity_field_reads_the_external_id(field, data, expected):
    provider = OAuth2Provider("acme", {"IDENTITY_FIELD": field})
    identity = provider.parse_identity(data)
    assert (identity and (identity.external_id, identity.label)) == expected


def test_discovery_documents_are_checked_when_read_back_from_djangos_cache(stub, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "x"}}
    from django.core.cache import cache

    provider = get_provider("acme")
    provider.metadata()
    (key,) = [k for k in cache._cache if "discovery.metadata" in k]  # noqa: SLF001
    tampered = cache.get(key.split(":", 2)[-1])
    tampered["token_endpoint"] = "http://tokens.example.com/token"
    cache.set(key.split(":", 2)[-1], tampered)
    discovery.clear_cache()

    assert provider.get_token_url() == f"{stub.issuer}/token"  # not the tampered copy: fetched again
    assert len(stub.calls("/openid-configuration")) == 2
    assert json.dumps(tampered)  # (the tampered copy was a plain dict)


# -- the documentation's examples (docs/providers.md) -------------------------------------------------------


def test_the_documented_settings_examples_are_clean_and_make_the_providers_they_say(settings, outbound):
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "providers.md").read_text()
    section = page.split("## Adding a provider from settings", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    made = []
    for source in blocks:
        namespace = {"env": lambda name: "a-secret-from-the-environment"}
        exec(compile(source, "docs/providers.md", "exec"), namespace)
        settings.BIGOAUTH = {**namespace["BIGOAUTH"], "ENCRYPTION_KEYS": [KEY]}
        assert check_settings() == []
        (slug,) = settings.BIGOAUTH["PROVIDERS"]
        made.append(type(get_provider(slug)))
    assert made == [OpenIDConnectProvider, OAuth2Provider]
    assert outbound == []  # building them fetched nothing
