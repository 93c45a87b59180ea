"""``manage.py check`` on ENCRYPTION_KEYS: W001 with DEBUG on, E009 with DEBUG off, E008 for a bad key."""

import pytest
from cryptography.fernet import Fernet

from django_bigoauth.checks import check_settings

GOOD_KEY = Fernet.generate_key().decode()
ENCRYPTION_IDS = {"django_bigoauth.W001", "django_bigoauth.E009", "django_bigoauth.E008"}


def encryption_messages(settings, debug, **top_level):
    settings.DEBUG = debug
    settings.BIGOAUTH = {
        "PROVIDERS": {"bigin": {"CLIENT_ID": "id", "CLIENT_SECRET": "secret"}},
        **top_level,
    }
    return [message for message in check_settings() if message.id in ENCRYPTION_IDS]


@pytest.mark.parametrize("keys", [None, []])
def test_no_keys_is_a_warning_while_debug_is_on(settings, keys):
    top = {} if keys is None else {"ENCRYPTION_KEYS": keys}
    (message,) = encryption_messages(settings, True, **top)
    assert message.id == "django_bigoauth.W001"
    assert not message.is_serious()
    assert "SECRET_KEY" in message.msg
    assert "Fernet.generate_key()" in message.hint


@pytest.mark.parametrize("keys", [None, []])
def test_no_keys_is_an_error_once_debug_is_off(settings, keys):
    top = {} if keys is None else {"ENCRYPTION_KEYS": keys}
    (message,) = encryption_messages(settings, False, **top)
    assert message.id == "django_bigoauth.E009"
    assert message.is_serious()
    assert "Fernet.generate_key()" in message.hint


@pytest.mark.parametrize(
    "keys",
    [["not-a-fernet-key"], [GOOD_KEY, "not-a-fernet-key"], "not-a-fernet-key", [GOOD_KEY[:-4]]],
)
@pytest.mark.parametrize("debug", [True, False])
def test_a_value_that_is_not_a_fernet_key_is_an_error(settings, keys, debug):
    (message,) = encryption_messages(settings, debug, ENCRYPTION_KEYS=keys)
    assert message.id == "django_bigoauth.E008"
    assert message.is_serious()
    # The check names the problem without repeating the (possibly real) key material.
    assert "not-a-fernet-key" not in message.msg and GOOD_KEY[:-4] not in message.msg


@pytest.mark.parametrize("keys", [[GOOD_KEY], [GOOD_KEY, Fernet.generate_key().decode()], GOOD_KEY])
@pytest.mark.parametrize("debug", [True, False])
def test_good_keys_are_clean(settings, keys, debug):
    assert encryption_messages(settings, debug, ENCRYPTION_KEYS=keys) == []
