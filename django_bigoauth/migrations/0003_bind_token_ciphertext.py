"""Bind every stored token's ciphertext to its row and column (see ``django_bigoauth.crypto``).

Tokens written before this migration were encrypted without the account id and field name,
and are refused when read from now on. This migration decrypts each with the configured keys
and encrypts it again, bound, under the first key. A token no configured key can decrypt is
left as it is (and stays unusable, as it already was); re-link that account.
Reversible: the reverse strips the binding again.
"""

from django.db import migrations
from django.db.models import TextField, Value
from django.db.models.functions import Cast

FIELDS = ("access_token", "refresh_token")


def _rewrite(apps, schema_editor, convert):
    from django_bigoauth import crypto
    from django_bigoauth.exceptions import TokenDecryptionError

    Token = apps.get_model("django_bigoauth", "Token")
    db = schema_editor.connection.alias
    raw = {f"raw_{name}": Cast(name, output_field=TextField()) for name in FIELDS}
    rows = Token.objects.using(db).annotate(**raw).values_list("pk", "account_id", *raw)
    for pk, account_id, *ciphertexts in rows.iterator():
        changes: dict[str, str] = {}
        for name, ciphertext in zip(FIELDS, ciphertexts, strict=True):
            if not ciphertext:
                continue
            try:
                token = crypto.open_sealed(ciphertext)
            except TokenDecryptionError:
                changes = {}
                break  # unreadable: leave the whole row as it is
            new = convert(crypto, token, account_id, name)
            if new is not None:
                changes[name] = new
        if changes:
            Token.objects.using(db).filter(pk=pk).update(
                **{name: Value(value, output_field=TextField()) for name, value in changes.items()}
            )


def bind(apps, schema_editor):
    def convert(crypto, token, account_id, field):
        if token.owner is not None:
            return None  # bound already
        return crypto.seal(str(token), owner=account_id, field=field)

    _rewrite(apps, schema_editor, convert)


def unbind(apps, schema_editor):
    def convert(crypto, token, account_id, field):
        if token.owner is None:
            return None
        return crypto.encrypt(str(token))

    _rewrite(apps, schema_editor, convert)


class Migration(migrations.Migration):
    dependencies = [("django_bigoauth", "0002_token_refresh_claim")]

    operations = [migrations.RunPython(bind, unbind, elidable=False)]
