"""Tokens at rest: Fernet encryption, ciphertext bound to its row and column, and key rotation.

``BIGOAUTH["ENCRYPTION_KEYS"]`` is a list of Fernet keys: the first encrypts, every one
decrypts (``MultiFernet``), so a new key is put first, ``bigoauth_rotate_keys`` is run
(``rotation.py``), and the old key is dropped. With no keys set, one is derived from
``SECRET_KEY`` with HKDF, and keys derived from ``SECRET_KEY_FALLBACKS`` decrypt too, so
rotating ``SECRET_KEY`` the way Django documents keeps every token readable (system check
``django_bigoauth.W001``, ``E009`` when ``DEBUG`` is off).

**Binding.** A stored token is encrypted together with the id of the row that owns it and
the name of its column (:func:`seal`), and :func:`open_sealed` returns both with the token.
Whoever reads a token checks them (:func:`check_binding`; ``Token.from_db`` does it for model
instances, ``tokens.py`` for its one-query hot path). A ciphertext copied from another
account's row, or from the refresh-token column into the access-token column, by someone
with write access to the table then fails like a wrong key does (``TokenDecryptionError``)
instead of being sent as this account's token. Fernet has no associated data, so the binding
travels inside the plaintext, where the key protects it like the token.

Why a field of our own rather than a package: the original django-fernet-fields has had no
release in years; the maintained django-fernet-encrypted-fields derives its keys from
``SECRET_KEY`` and a salt setting instead of taking Fernet keys, has no binding, and rotates
by loading and re-saving every row. We want keys an operator lists, the raw ciphertext
reachable so rotation can skip rows already under the new key and run in locked batches, and
a failed decryption that names the account, not a generic error.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.views.decorators.debug import sensitive_variables

from .conf import bigoauth_settings
from .exceptions import TokenBindingError, TokenDecryptionError
from .redaction import mask

__all__ = [
    "EncryptedTextField",
    "Sealed",
    "SealedText",
    "check_binding",
    "clear_cache",
    "configured_keys",
    "decrypt",
    "derive_key",
    "encrypt",
    "is_readable",
    "is_under_primary_key",
    "open_sealed",
    "reencrypt",
    "seal",
]

#: Marks a bound plaintext; the separator cannot occur in a token (printable ASCII only).
_BOUND_PREFIX = "bigoauth1"
_SEP = "\x1f"


@sensitive_variables()
def derive_key(secret: str) -> bytes:
    """A Fernet key from ``SECRET_KEY``; HKDF with our own salt so it is not the key itself."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"django_bigoauth", info=b"token encryption")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def configured_keys() -> list[bytes]:
    """``ENCRYPTION_KEYS``, or keys derived from ``SECRET_KEY`` and then ``SECRET_KEY_FALLBACKS``."""
    keys = bigoauth_settings.ENCRYPTION_KEYS
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    if keys:
        return [key.encode() if isinstance(key, str) else key for key in keys]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [derive_key(secret) for secret in secrets]


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


def _clear_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("BIGOAUTH", "SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        clear_cache()


setting_changed.connect(_clear_on_setting_changed, dispatch_uid="django_bigoauth.crypto")


# -- plain encryption (short-lived values: a PKCE verifier kept with its state) ---------------


@sensitive_variables()
def encrypt(plaintext: str) -> str:
    return _fernets()[1].encrypt(plaintext.encode()).decode()


@sensitive_variables()
def decrypt(ciphertext: str) -> str:
    try:
        return _fernets()[1].decrypt(ciphertext.encode()).decode()
    except (InvalidToken, UnicodeDecodeError):
        raise TokenDecryptionError(
            "A stored value cannot be decrypted with any key in BIGOAUTH['ENCRYPTION_KEYS'] "
            "(was a key removed before bigoauth_rotate_keys ran?)."
        ) from None


def is_under_primary_key(ciphertext: str) -> bool:
    try:
        _fernets()[0].decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(ciphertext: str) -> str:
    """The same plaintext (binding included) under the first key; ``TokenDecryptionError`` if no key fits."""
    try:
        return _fernets()[1].rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError("A stored token cannot be decrypted with any configured key.") from None


# -- bound encryption (tokens) ------------------------------------------------------------------


class Sealed:
    """A token on its way into the database, with the row and column it belongs to."""

    __slots__ = ("field", "owner", "token")

    @sensitive_variables()
    def __init__(self, token: str, *, owner: Any, field: str) -> None:
        self.token = token
        self.owner = owner
        self.field = field

    def __repr__(self) -> str:
        return f"<Sealed {self.field} of {self.owner}>"


class SealedText(str):
    """A token read from the database, with the row and column its ciphertext was made for.

    It is the token (a ``str``); ``owner`` and ``field`` say where the ciphertext belongs, for
    :func:`check_binding`. ``owner`` is ``None`` for a value written before binding existed.
    """

    owner: str | None
    field: str

    def __repr__(self) -> str:
        return f"SealedText({mask(self)!r})"


@sensitive_variables()
def seal(token: str, *, owner: Any, field: str) -> str:
    """Ciphertext of ``token`` bound to row ``owner`` and column ``field``."""
    return encrypt(_SEP.join((_BOUND_PREFIX, str(owner), field, token)))


@sensitive_variables()
def open_sealed(ciphertext: str) -> SealedText:
    """The token behind ``ciphertext``, carrying its binding; ``TokenDecryptionError`` if no key fits."""
    plaintext = decrypt(ciphertext)
    parts = plaintext.split(_SEP, 3)
    if len(parts) == 4 and parts[0] == _BOUND_PREFIX:
        value = SealedText(parts[3])
        value.owner, value.field = parts[1], parts[2]
    else:  # written before binding existed; migration 0003 binds every such row
        value = SealedText(plaintext)
        value.owner, value.field = None, ""
    return value


@sensitive_variables()
def check_binding(value: Any, *, owner: Any, field: str) -> str:
    """``value`` as a plain ``str`` if it was sealed for ``owner``'s ``field``; else ``TokenBindingError``."""
    if value in (None, ""):
        return value
    if not isinstance(value, SealedText) or value.owner != str(owner) or value.field != field:
        raise TokenBindingError(
            f"The stored {field.replace('_', ' ')} of row {owner} was not encrypted for that row and column "
            "(copied from elsewhere?): it is not used."
        )
    return str(value)


@sensitive_variables()
def is_readable(ciphertext: str | None, *, owner: Any, field: str) -> bool:
    """Whether a stored ciphertext decrypts with a configured key and was sealed for ``owner``'s ``field``.

    One decryption per value: fine for the few accounts of one user's page, too much for a
    list of thousands (the admin's account list never calls it).
    """
    if not ciphertext:
        return True
    try:
        check_binding(open_sealed(ciphertext), owner=owner, field=field)
    except TokenDecryptionError:
        return False
    return True


class EncryptedTextField(models.TextField):
    """A text column holding Fernet ciphertext bound to its row; Python sees the plaintext.

    ``bind_to`` names the attribute of the model instance that identifies the owner (for
    ``Token``, ``"account_id"``). Values are sealed in ``pre_save``, where the instance is
    known; a ``QuerySet.update()`` must pass :class:`Sealed` values, and a plain string is
    refused there rather than stored unbound. Empty strings and ``None`` are stored as they
    are. Ciphertext is not searchable: lookups other than ``isnull`` make no sense on it.
    """

    def __init__(self, *args: Any, bind_to: str = "", **kwargs: Any) -> None:
        self.bind_to = bind_to
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if self.bind_to:
            kwargs["bind_to"] = self.bind_to
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if value in (None, "") or isinstance(value, Sealed):
            return value
        return Sealed(str(value), owner=getattr(model_instance, self.bind_to), field=self.name)

    @sensitive_variables()
    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Sealed):
            return seal(value.token, owner=value.owner, field=value.field)
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        raise TypeError(
            f"{self.model.__name__}.{self.name} is written through django_bigoauth.store, which binds it to its "
            "row; assign it on an instance and save(), or pass crypto.Sealed(...) to update()."
        )

    @sensitive_variables()
    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return value
        return open_sealed(value)
