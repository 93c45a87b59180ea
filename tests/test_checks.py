"""Each configuration mistake is reported by ``manage.py check`` with its stable id."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_bigoauth.checks import check_settings

KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="


def ids(settings, providers, **top):
    settings.BIGOAUTH = {"PROVIDERS": providers, "ENCRYPTION_KEYS": [KEY], **top}
    return sorted(message.id for message in check_settings())


def good(**extra):
    return {"CLIENT_ID": "id", "CLIENT_SECRET": "secret", **extra}


def test_a_good_configuration_is_clean(settings):
    assert ids(settings, {"bigin": good(DATA_CENTRE="eu"), "biggerplate": good()}) == []


def test_missing_client_id_and_secret(settings):
    assert ids(settings, {"bigin": {"CLIENT_SECRET": "s"}}) == ["django_bigoauth.E002"]
    assert ids(settings, {"bigin": {"CLIENT_ID": "i"}}) == ["django_bigoauth.E003"]


def test_unknown_provider(settings):
    assert ids(settings, {"myspace": good()}) == ["django_bigoauth.E004"]


def test_class_that_does_not_import(settings):
    assert ids(settings, {"custom": good(CLASS="nowhere.Provider")}) == ["django_bigoauth.E005"]


def test_unknown_data_centre(settings):
    assert ids(settings, {"bigin": good(DATA_CENTRE="mars")}) == ["django_bigoauth.E006"]


@pytest.mark.parametrize(
    "override",
    [
        {"TOKEN_URL": "http://tokens.example.com/token"},
        {"AUTHORIZE_URL": "http://192.168.1.10/auth"},
        {"API_BASE_URL": "http://api.example.com"},
        {"ACCOUNTS_SERVERS": {"us": "http://accounts.example.com"}},
    ],
)
def test_http_endpoint_off_loopback(settings, override):
    assert "django_bigoauth.E007" in ids(settings, {"bigin": good(**override)})


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "[::1]:9000"])
def test_http_on_loopback_is_fine(settings, host):
    assert ids(settings, {"biggerplate": good(TOKEN_URL=f"http://{host}/token")}) == []


def test_typo_in_a_key_is_a_warning(settings):
    assert ids(settings, {"bigin": good(CLIENT_SECRETS="x")}, REFRESH_LEWAY=5) == [
        "django_bigoauth.W002",
        "django_bigoauth.W002",
    ]


def test_providers_must_be_a_dict(settings):
    assert ids(settings, ["bigin"]) == ["django_bigoauth.E001"]


def test_check_command_fails_loudly_on_errors(settings):
    settings.BIGOAUTH = {"PROVIDERS": {"bigin": {"CLIENT_ID": "x", "DATA_CENTRE": "mars"}}, "ENCRYPTION_KEYS": [KEY]}
    with pytest.raises(SystemCheckError) as excinfo:
        call_command("check")
    text = str(excinfo.value)
    assert "django_bigoauth.E003" in text and "django_bigoauth.E006" in text
    assert "mars" in text
