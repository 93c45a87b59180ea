"""Tokens at rest: Fernet ciphertext under the first key, readable under any listed key."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from django_bigoauth import crypto
from django_bigoauth.exceptions import TokenDecryptionError
from django_bigoauth.models import LinkedAccount, Token

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def use_keys(settings, *keys):
    """Point ENCRYPTION_KEYS at ``keys`` (none: the key derived from SECRET_KEY)."""
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": list(keys)}


def raw_token_rows():
    """Every row of the token table as the database holds it, read with a plain cursor."""
    table = connection.ops.quote_name(Token._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY {connection.ops.quote_name('id')}")  # noqa: S608
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def raw_by_account():
    return {row["account_id"]: (row["access_token"], row["refresh_token"]) for row in raw_token_rows()}


def fernet_plaintext(key, ciphertext):
    return Fernet(key.encode() if isinstance(key, str) else key).decrypt(ciphertext.encode()).decode()


def bound(account, field, token):
    """The plaintext a token is stored as: bound to its account and column (see crypto.py)."""
    return f"bigoauth1\x1f{account.pk}\x1f{field}\x1f{token}"


def test_tokens_are_stored_as_fernet_ciphertext_under_the_first_key(settings, make_account):
    use_keys(settings, KEY_A, KEY_B)
    account = make_account(access_token="1000.access.plain-a1", refresh_token="1000.refresh.plain-r1")
    access_raw, refresh_raw = raw_by_account()[account.pk]
    assert "plain" not in access_raw and "plain" not in refresh_raw
    assert fernet_plaintext(KEY_A, access_raw) == bound(account, "access_token", "1000.access.plain-a1")
    assert fernet_plaintext(KEY_A, refresh_raw) == bound(account, "refresh_token", "1000.refresh.plain-r1")
    with pytest.raises(InvalidToken):
        fernet_plaintext(KEY_B, access_raw)


def test_the_first_key_encrypts_and_every_key_decrypts(settings, make_account):
    use_keys(settings, KEY_A)
    old = make_account(access_token="1000.access.old", external_id="old")
    use_keys(settings, KEY_B, KEY_A)
    assert old.get_access_token() == "1000.access.old"
    new = make_account(access_token="1000.access.new", external_id="new")
    new_raw = raw_by_account()[new.pk][0]
    assert fernet_plaintext(KEY_B, new_raw) == bound(new, "access_token", "1000.access.new")
    with pytest.raises(InvalidToken):
        fernet_plaintext(KEY_A, new_raw)


def test_a_key_is_derived_from_secret_key_when_none_is_set(settings, make_account):
    use_keys(settings)
    account = make_account(access_token="1000.access.derived")
    raw = raw_by_account()[account.pk][0]
    derived = crypto.derive_key(settings.SECRET_KEY)
    assert fernet_plaintext(derived, raw) == bound(account, "access_token", "1000.access.derived")
    # A derived key, not SECRET_KEY itself stretched to length.
    assert settings.SECRET_KEY.encode() not in derived
    assert account.get_access_token() == "1000.access.derived"

    settings.SECRET_KEY = "a-new-secret-key-for-this-test"
    with pytest.raises(TokenDecryptionError, match=rf"account {account.pk} \(bigin\)"):
        account.get_access_token()


def test_a_token_no_key_can_decrypt_raises_an_error_naming_the_account(settings, make_account, caplog):
    use_keys(settings, KEY_A)
    account = make_account("biggerplate", access_token="1000.access.lost-key", refresh_token="1000.refresh.lost-key")
    ciphertext = raw_by_account()[account.pk][0]
    use_keys(settings, KEY_B)
    for call in (account.get_access_token, account.refresh):
        with pytest.raises(TokenDecryptionError) as excinfo:
            call()
        message = str(excinfo.value)
        assert f"account {account.pk} (biggerplate)" in message
        assert "ENCRYPTION_KEYS" in message
        assert "lost-key" not in message and ciphertext not in message
    logged = [r.getMessage() for r in caplog.records if r.name == "django_bigoauth" and r.levelname == "ERROR"]
    assert (
        logged == [f"The token of account {account.pk} (biggerplate) cannot be decrypted with any configured key"] * 2
    )


def test_empty_values_are_stored_as_they_are(settings, make_account):
    account = make_account("biggerplate", refresh_token="")
    assert raw_by_account()[account.pk][1] == ""
    assert Token.objects.get(account=account).refresh_token == ""


def test_keys_that_are_not_fernet_keys_are_a_configuration_error(settings, db):
    use_keys(settings, "not-a-fernet-key-value")
    account = LinkedAccount.objects.create(provider="bigin")
    with pytest.raises(ImproperlyConfigured) as excinfo, transaction.atomic():
        Token.objects.create(account=account, access_token="1000.access.never-stored")
    assert "Fernet" in str(excinfo.value)
    assert "not-a-fernet-key-value" not in str(excinfo.value)
    assert Token.objects.count() == 0


def test_reencrypt_moves_a_value_to_the_first_key(settings):
    use_keys(settings, KEY_A)
    old = crypto.encrypt("secret-value")
    assert crypto.is_under_primary_key(old)
    use_keys(settings, KEY_B, KEY_A)
    assert not crypto.is_under_primary_key(old)
    new = crypto.reencrypt(old)
    assert crypto.is_under_primary_key(new)
    assert fernet_plaintext(KEY_B, new) == "secret-value"
    use_keys(settings, KEY_B)
    with pytest.raises(TokenDecryptionError) as excinfo:
        crypto.reencrypt(old)
    assert "secret-value" not in str(excinfo.value)
