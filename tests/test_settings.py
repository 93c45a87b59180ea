"""The settings object: defaults, overrides, and reloading under override_settings."""

import pytest
from django.test import override_settings

from django_bigoauth.conf import DEFAULTS, bigoauth_settings
from django_bigoauth.providers import get_provider


def test_defaults_apply_when_keys_are_missing():
    with override_settings(BIGOAUTH={"PROVIDERS": {}}):
        assert bigoauth_settings.REFRESH_LEEWAY == 60
        assert bigoauth_settings.HTTP_TIMEOUT == 10
        assert bigoauth_settings.STATE_TTL == 600
        assert bigoauth_settings.ENCRYPTION_KEYS == []


def test_no_bigoauth_setting_at_all_means_defaults():
    with override_settings():
        from django.conf import settings

        del settings.BIGOAUTH
        assert bigoauth_settings.PROVIDERS == {}
        assert bigoauth_settings.HTTP_TIMEOUT == DEFAULTS["HTTP_TIMEOUT"]


def test_override_settings_is_seen_at_once_and_undone_after():
    before = bigoauth_settings.HTTP_TIMEOUT
    with override_settings(BIGOAUTH={"HTTP_TIMEOUT": 3, "REFRESH_LEEWAY": 5}):
        assert bigoauth_settings.HTTP_TIMEOUT == 3
        assert bigoauth_settings.REFRESH_LEEWAY == 5
    assert bigoauth_settings.HTTP_TIMEOUT == before


def test_provider_instances_are_rebuilt_when_settings_change():
    first = get_provider("bigin")
    with override_settings(BIGOAUTH={"PROVIDERS": {"bigin": {"CLIENT_ID": "other", "CLIENT_SECRET": "x"}}}):
        assert get_provider("bigin").client_id == "other"
    assert get_provider("bigin").client_id == first.client_id


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="Invalid BIGOAUTH setting"):
        bigoauth_settings.NOT_A_SETTING  # noqa: B018


def test_provider_config_fills_every_key_every_provider_accepts():
    config = bigoauth_settings.provider_config("bigin")
    for key in (
        "CLIENT_ID",
        "CLIENT_SECRET",
        "SCOPES",
        "CLASS",
        "REDIRECT_URI",
        "PKCE",
        "AUTH_HEADER_FORMAT",
        "AUTHORIZE_URL",
        "TOKEN_URL",
        "REVOKE_URL",
        "API_BASE_URL",
        "EXTRA_AUTHORIZE_PARAMS",
    ):
        assert key in config
    assert config["DATA_CENTRE"] == "us"  # as given


def test_zoho_keys_are_the_bigin_providers_own_declaration():
    from django_bigoauth.providers.base import COMMON_SETTINGS_KEYS, Provider
    from django_bigoauth.providers.biggerplate import BiggerplateProvider
    from django_bigoauth.providers.bigin import BiginProvider
    from django_bigoauth.providers.generic import OAuth2Provider, OpenIDConnectProvider

    zoho = {"DATA_CENTRE", "ACCOUNTS_SERVERS", "API_DOMAINS"}
    assert zoho <= BiginProvider.settings_keys
    assert zoho.isdisjoint(Provider.settings_keys | BiggerplateProvider.settings_keys)
    assert zoho.isdisjoint(OpenIDConnectProvider.settings_keys)
    assert "ISSUER" in OpenIDConnectProvider.settings_keys and "ISSUER" not in OAuth2Provider.settings_keys
    assert COMMON_SETTINGS_KEYS <= BiginProvider.settings_keys & OpenIDConnectProvider.settings_keys
