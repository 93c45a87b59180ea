"""Each configuration mistake is reported by ``manage.py check`` with its stable id."""

import re
from pathlib import Path

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


def test_class_that_imports_but_is_not_a_provider(settings):
    assert ids(settings, {"custom": good(CLASS="django_bigoauth.models.LinkedAccount")}) == ["django_bigoauth.E005"]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise RuntimeError('the module needs a service that is down')\n", "RuntimeError"),
        ("import os\nPORT = int(os.environ.get('BIGOAUTH_NO_SUCH_VARIABLE', 'eighty'))\n", "ValueError"),
    ],
)
def test_class_whose_module_fails_to_import_is_reported_not_raised(settings, tmp_path, monkeypatch, source, error):
    module = f"bigoauth_broken_{error.lower()}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.BIGOAUTH = {"PROVIDERS": {"custom": good(CLASS=f"{module}.Provider")}, "ENCRYPTION_KEYS": [KEY]}
    (message,) = check_settings()
    assert message.id == "django_bigoauth.E005"
    assert error in message.msg and f"{module}.Provider" in message.msg


def test_unknown_data_centre(settings):
    assert ids(settings, {"bigin": good(DATA_CENTRE="mars")}) == ["django_bigoauth.E006"]


def test_accounts_servers_without_the_data_centre(settings):
    # The default DATA_CENTRE "us" is not in a table that replaces the built-in one.
    servers = {"sandbox": "http://127.0.0.1:9"}
    assert ids(settings, {"bigin": good(ACCOUNTS_SERVERS=servers)}) == ["django_bigoauth.E006"]
    assert ids(settings, {"bigin": good(ACCOUNTS_SERVERS=servers, DATA_CENTRE="sandbox")}) == []


@pytest.mark.parametrize(
    "servers",
    [
        ["https://accounts.zoho.com"],
        "https://accounts.zoho.com",
        {"us": None},
        {"us": ["https://accounts.zoho.com"]},
    ],
)
def test_accounts_servers_that_is_not_a_dict_of_urls_is_reported_not_raised(settings, servers):
    assert ids(settings, {"bigin": good(ACCOUNTS_SERVERS=servers)}) == ["django_bigoauth.E001"]


@pytest.mark.parametrize("scopes", ["ZohoBigin.modules.ALL", ("ZohoBigin.modules.ALL", 7), {"ZohoBigin.org.READ"}])
def test_scopes_must_be_a_list_or_tuple_of_strings(settings, scopes):
    assert ids(settings, {"bigin": good(SCOPES=scopes)}) == ["django_bigoauth.E010"]
    assert ids(settings, {"biggerplate": good(SCOPES=scopes)}) == ["django_bigoauth.E010"]


@pytest.mark.parametrize("scopes", [["account", "maps"], ("account",), []])
def test_scopes_as_a_list_or_tuple_are_fine(settings, scopes):
    assert ids(settings, {"biggerplate": good(SCOPES=scopes)}) == []


@pytest.mark.parametrize(
    "key", ["REFRESH_LEEWAY", "HTTP_TIMEOUT", "STATE_TTL", "DISCOVERY_TTL", "REFRESH_ON_401_INTERVAL"]
)
@pytest.mark.parametrize("value", ["60", None, True, -1, float("nan"), float("inf"), [10]])
def test_durations_must_be_non_negative_numbers(settings, key, value):
    assert ids(settings, {"biggerplate": good()}, **{key: value}) == ["django_bigoauth.E011"]


def test_http_timeout_must_be_more_than_zero(settings):
    assert ids(settings, {"biggerplate": good()}, HTTP_TIMEOUT=0) == ["django_bigoauth.E011"]
    assert ids(settings, {"biggerplate": good()}, REFRESH_LEEWAY=0, STATE_TTL=0.5, HTTP_TIMEOUT=0.5) == []


@pytest.mark.parametrize("value", ["false", "True", 1, 0, None])
def test_authorise_on_get_must_be_a_bool(settings, value):
    # "false" would read as on: only True turns one-click GET links on, and anything else is named.
    assert ids(settings, {"biggerplate": good()}, AUTHORISE_ON_GET=value) == ["django_bigoauth.E012"]


@pytest.mark.parametrize("value", [True, False])
def test_authorise_on_get_true_or_false_is_fine(settings, value):
    assert ids(settings, {"biggerplate": good()}, AUTHORISE_ON_GET=value) == []


def test_a_string_refresh_leeway_is_named_in_the_message(settings):
    settings.BIGOAUTH = {"PROVIDERS": {}, "ENCRYPTION_KEYS": [KEY], "REFRESH_LEEWAY": "60"}
    (message,) = check_settings()
    assert "REFRESH_LEEWAY" in message.msg and "'60'" in message.msg


@pytest.mark.parametrize(
    "scopes",
    [["ZohoBigin.modules.ALL"], ["ZohoBigin.modules.ALL", "zohobigin.org.read"], []],
)
def test_bigin_scopes_without_an_org_read_scope_are_a_warning(settings, scopes):
    settings.BIGOAUTH = {"PROVIDERS": {"bigin": good(SCOPES=scopes)}, "ENCRYPTION_KEYS": [KEY]}
    (message,) = check_settings()
    assert message.id == "django_bigoauth.W003" and not message.is_serious()
    assert "ZohoBigin.org.READ" in message.msg
    assert "organisation" in message.hint


@pytest.mark.parametrize(
    "scopes",
    [
        ["ZohoBigin.modules.ALL", "ZohoBigin.org.READ"],
        ("ZohoBigin.modules.ALL", "ZohoBigin.org.ALL"),
        None,  # not set: the default scopes include ZohoBigin.org.READ
    ],
)
def test_bigin_scopes_with_an_org_read_scope_are_clean(settings, scopes):
    entry = good() if scopes is None else good(SCOPES=scopes)
    assert ids(settings, {"bigin": entry}) == []


def test_the_org_scope_warning_is_for_bigin_only(settings):
    assert ids(settings, {"biggerplate": good(SCOPES=["account"])}) == []


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


def test_every_check_id_is_in_the_docstring_the_documentation_renders():
    import django_bigoauth.checks as module

    source = Path(module.__file__).read_text()
    emitted = set(re.findall(r'id=f"\{ID\}\.([EW]\d{3})"', source))
    emitted |= set(re.findall(r'\("CLIENT_(?:ID|SECRET)", "(E\d{3})"', source))
    # docs/checks.rst is the docstring's definition list, rendered by autodoc: nothing to copy by hand.
    page = (Path(module.__file__).parent.parent / "docs" / "checks.rst").read_text()
    assert ".. automodule:: django_bigoauth.checks" in page
    assert set(re.findall(r"^``django_bigoauth\.([EW]\d{3})``$", module.__doc__, re.M)) == emitted
    assert emitted == {f"E{n:03}" for n in range(1, 14)} | {"W001", "W002", "W003", "W004"}
