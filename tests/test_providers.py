"""The provider registry and what each provider class knows."""

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_bigoauth.exceptions import AccountsServerNotAllowed, CallbackError, InvalidGrant, ProviderUnavailable
from django_bigoauth.providers import Provider, UnknownProvider, get_provider, get_providers
from django_bigoauth.providers.biggerplate import BiggerplateProvider
from django_bigoauth.providers.bigin import DATA_CENTRES, BiginProvider

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class CustomProvider(Provider):
    name = "Custom"
    authorize_url = "https://auth.example.com/authorize"
    token_url = "https://auth.example.com/token"


def query(url):
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def bigin(**config):
    return BiginProvider("bigin", {"CLIENT_ID": "1000.X", "CLIENT_SECRET": "s", **config})


# -- registry ------------------------------------------------------------------------------


def test_builtin_providers_need_no_class_key():
    assert isinstance(get_provider("bigin"), BiginProvider)
    assert isinstance(get_provider("biggerplate"), BiggerplateProvider)
    assert [p.slug for p in get_providers()] == ["biggerplate", "bigin"]


def test_unknown_slug_raises_unknown_provider():
    with pytest.raises(UnknownProvider):
        get_provider("myspace")


def test_a_third_provider_by_import_string():
    providers = {"custom": {"CLASS": "tests.test_providers.CustomProvider", "CLIENT_ID": "c", "CLIENT_SECRET": "s"}}
    with override_settings(BIGOAUTH={"PROVIDERS": providers}):
        provider = get_provider("custom")
        assert isinstance(provider, CustomProvider)
        assert provider.get_token_url() == "https://auth.example.com/token"


@pytest.mark.parametrize("path", ["tests.test_providers.Nope", "tests.test_providers.query"])
def test_a_bad_class_is_improperly_configured(path):
    with override_settings(BIGOAUTH={"PROVIDERS": {"custom": {"CLASS": path}}}):
        with pytest.raises(ImproperlyConfigured, match="CLASS"):
            get_provider("custom")


def test_an_unknown_slug_without_class_is_improperly_configured():
    with override_settings(BIGOAUTH={"PROVIDERS": {"myspace": {"CLIENT_ID": "x"}}}):
        with pytest.raises(ImproperlyConfigured, match="not built in"):
            get_provider("myspace")


# -- Biggerplate --------------------------------------------------------------------------------


def test_biggerplate_authorise_url_and_defaults():
    provider = BiggerplateProvider("biggerplate", {"CLIENT_ID": "bp"})
    url = provider.authorization_url(redirect_uri="https://site.example/cb/", state="st")
    assert url.startswith("https://accounts.biggerplate.com/oauth/auth?")
    assert query(url) == {
        "response_type": "code",
        "client_id": "bp",
        "redirect_uri": "https://site.example/cb/",
        "state": "st",
    }  # no scope: none is documented
    assert provider.get_token_url() == "https://accounts.biggerplate.com/oauth/token"
    assert provider.get_api_base_url() == "https://api.biggerplate.com"
    assert not provider.supports_revoke
    assert provider.extra_token_params("authorization_code") == {"response_type": "token"}
    assert provider.extra_token_params("refresh_token") == {}


def test_biggerplate_reads_expires_in_and_falls_back_to_expires():
    provider = BiggerplateProvider("biggerplate", {})
    reply = provider.parse_token_reply(
        {"access_token": "a", "token_type": "Bearer", "expires": 1441738946, "expires_in": 3600, "refresh_token": "r"},
        NOW,
    )
    assert reply.expires_at == NOW + timedelta(seconds=3600)
    assert reply.refresh_token == "r"
    only_absolute = provider.parse_token_reply({"access_token": "a", "expires": 1441738946}, NOW)
    assert only_absolute.expires_at == datetime(2015, 9, 8, 19, 2, 26, tzinfo=timezone.utc)


def test_header_format_is_a_setting():
    assert BiggerplateProvider("biggerplate", {}).authorization_header("tok") == "Bearer tok"
    assert BiggerplateProvider("biggerplate", {"AUTH_HEADER_FORMAT": ""}).authorization_header("tok") == "tok"
    assert bigin().authorization_header("tok") == "Zoho-oauthtoken tok"


def test_scopes_are_settable_and_space_joined_for_biggerplate():
    provider = BiggerplateProvider("biggerplate", {"SCOPES": ["account", "maps"]})
    assert query(provider.authorization_url(redirect_uri="https://x/", state="s"))["scope"] == "account maps"


# -- Bigin -------------------------------------------------------------------------------------


def test_bigin_data_centre_table():
    assert set(DATA_CENTRES) == {"us", "eu", "in", "au", "cn", "jp", "sa", "ca", "uk"}
    assert bigin(DATA_CENTRE="eu").get_authorize_url() == "https://accounts.zoho.eu/oauth/v2/auth"
    assert bigin(DATA_CENTRE="ca").get_token_url() == "https://accounts.zohocloud.ca/oauth/v2/token"
    assert bigin(DATA_CENTRE="uk").home_accounts_server == "https://accounts.zoho.uk"
    assert bigin().get_revoke_url("https://accounts.zoho.in") == "https://accounts.zoho.in/oauth/v2/token/revoke"
    assert bigin(DATA_CENTRE="ca").get_api_base_url() == "https://www.zohoapis.ca"


def test_bigin_authorise_url_has_comma_scopes_offline_and_consent():
    url = bigin(SCOPES=["ZohoBigin.modules.ALL", "ZohoBigin.users.READ"]).authorization_url(
        redirect_uri="https://site/cb/", state="st", code_challenge="ch"
    )
    params = query(url)
    assert url.startswith("https://accounts.zoho.com/oauth/v2/auth?")
    assert params["scope"] == "ZohoBigin.modules.ALL,ZohoBigin.users.READ"
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["code_challenge"] == "ch" and params["code_challenge_method"] == "S256"


def test_bigin_reads_new_and_old_expiry_forms():
    provider = bigin()
    new = provider.parse_token_reply(
        {"access_token": "a", "expires_in": 3600, "api_domain": "https://www.zohoapis.eu"}, NOW
    )
    old = provider.parse_token_reply({"access_token": "a", "expires_in": 3600000, "expires_in_sec": 3600}, NOW)
    assert new.expires_at == old.expires_at == NOW + timedelta(hours=1)
    assert new.api_domain == "https://www.zohoapis.eu"
    assert new.refresh_token is None


def test_bigin_accounts_server_allow_list_matches_exact_origin():
    provider = bigin()
    context = provider.read_callback({"code": "c", "location": "eu", "accounts-server": "https://accounts.zoho.eu"})
    assert context.accounts_server == "https://accounts.zoho.eu"
    assert context.data_centre == "eu"
    # Default port spelled out is the same origin.
    assert provider.allowed_accounts_server("https://accounts.zoho.eu:443/") == "https://accounts.zoho.eu"
    for evil in (
        "https://evil.example",
        "http://accounts.zoho.eu",
        "https://accounts.zoho.eu.evil.example",
        "https://accounts.zoho.eu:8443",
        "https://evil.example/?https://accounts.zoho.com",
        "",
        "https://accounts.zoho.com@evil.example",
    ):
        with pytest.raises(AccountsServerNotAllowed):
            provider.allowed_accounts_server(evil)


def test_bigin_callback_with_code_but_no_accounts_server_is_refused():
    with pytest.raises(CallbackError):
        bigin().read_callback({"code": "c"})


def test_accounts_servers_setting_replaces_the_table():
    provider = bigin(ACCOUNTS_SERVERS={"sandbox": "http://127.0.0.1:9999/"}, DATA_CENTRE="sandbox")
    assert provider.get_token_url() == "http://127.0.0.1:9999/oauth/v2/token"
    assert provider.allowed_accounts_server("http://127.0.0.1:9999") == "http://127.0.0.1:9999"
    with pytest.raises(AccountsServerNotAllowed):
        provider.allowed_accounts_server("https://accounts.zoho.com")


def test_endpoint_overrides_win():
    provider = bigin(TOKEN_URL="https://sandbox.example/token", API_BASE_URL="https://api.sandbox.example")
    assert provider.get_token_url("https://accounts.zoho.eu") == "https://sandbox.example/token"
    assert provider.get_api_base_url("https://www.zohoapis.eu") == "https://api.sandbox.example"


def test_zoho_error_codes_map_to_the_right_exceptions():
    provider = bigin()
    assert provider.error_for("invalid_code", 200) is InvalidGrant
    assert provider.error_for("Access Denied", 400) is ProviderUnavailable
    assert provider.error_for("invalid_grant", 400) is InvalidGrant


def test_bigin_identity_is_the_organisation():
    identity = bigin().parse_identity({"org": [{"id": "4000001", "company_name": "Acme"}]})
    assert (identity.external_id, identity.label) == ("4000001", "Acme")
    assert bigin().parse_identity({"org": []}) is None
    assert bigin().parse_identity(["nonsense"]) is None
