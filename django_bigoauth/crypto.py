"""Tokens at rest: a Fernet-encrypted text field and key rotation.

``BIGOAUTH["ENCRYPTION_KEYS"]`` is a list of Fernet keys: the first encrypts, every one
decrypts (``MultiFernet``), so a new key is put first, ``bigoauth_rotate_keys`` is run
(``rotation.py``), and the old key is dropped. With no keys set, one is derived from
``SECRET_KEY`` with HKDF (system check ``django_bigoauth.W001``, ``E009`` when ``DEBUG`` is off).

Why a field of our own (about forty lines over ``cryptography``, which we need anyway)
rather than a package: the original django-fernet-fields has had no release in years and
documents Django 1.8-era support; the maintained django-fernet-encrypted-fields derives its
keys from ``SECRET_KEY`` and a salt setting instead of taking Fernet keys, and its rotation
is "load and re-save every row". We want keys an operator generates and lists, the raw
ciphertext reachable so rotation can skip rows already under the new key and run in locked
batches, and a failed decryption that names the account (see ``tokens.py``), not a
generic error.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.views.decorators.debug import sensitive_variables

from .conf import bigoauth_settings
from .exceptions import TokenDecryptionError


def derive_key(secret: str) -> bytes:
    """A Fernet key from ``SECRET_KEY``; HKDF with our own salt so it is not the key itself."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"django_bigoauth", info=b"token encryption")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def configured_keys() -> list[bytes]:
    keys = bigoauth_settings.ENCRYPTION_KEYS
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    if keys:
        return [key.encode() if isinstance(key, str) else key for key in keys]
    return [derive_key(settings.SECRET_KEY)]


@functools.lru_cache(maxsize=1)
def _fernets() -> tuple[Fernet, MultiFernet]:
    try:
        fernets = [Fernet(key) for key in configured_keys()]
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "BIGOAUTH['ENCRYPTION_KEYS'] must hold Fernet keys (make one with `python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
        ) from exc
    return fernets[0], MultiFernet(fernets)


def clear_cache() -> None:
    _fernets.cache_clear()


@sensitive_variables()
def encrypt(plaintext: str) -> str:
    return _fernets()[1].encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernets()[1].decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "A stored token cannot be decrypted with any key in BIGOAUTH['ENCRYPTION_KEYS'] "
            "(was a key removed before bigoauth_rotate_keys ran?)."
        ) from None


def is_under_primary_key(ciphertext: str) -> bool:
    try:
        _fernets()[0].decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(ciphertext: str) -> str:
    """The same plaintext under the first key; raises ``TokenDecryptionError`` if no key fits."""
    try:
        return _fernets()[1].rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError("A stored token cannot be decrypted with any configured key.") from None


class EncryptedTextField(models.TextField):
    """A text column holding Fernet ciphertext; Python sees the plaintext.

    Empty strings and ``None`` are stored as they are: there is nothing to hide in them.
    Ciphertext is not searchable, so lookups other than ``isnull`` make no sense on it.
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return value
        return decrypt(value)
