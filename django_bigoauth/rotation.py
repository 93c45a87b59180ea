"""Re-encrypting every stored token under the first key of ``ENCRYPTION_KEYS``.

The procedure: put a new key first in ``ENCRYPTION_KEYS`` (keep the old ones after it), run
``bigoauth_rotate_keys``, then drop the old keys. This module does the middle step.

* Ciphertext is read and written as raw column values (a ``Cast`` to a plain ``TextField``),
  so nothing is decrypted into a model instance and nothing is encrypted twice.
* Tokens go in batches ordered by primary key; each batch is one transaction that locks its
  rows (``SELECT ... FOR UPDATE`` where the database has it), so an interrupted run keeps
  every batch it finished and a second run only touches what is left.
* A value already under the first key is left alone: a second run changes nothing.
* The write is conditional on the token's ``generation``: if a refresh (or a re-link)
  rewrote the token after we read it, the newer token stays. That matters on SQLite, which
  has no row locks; elsewhere the lock already keeps refreshes out.
* A token no configured key can decrypt is left untouched and reported by account, after
  the others are done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.utils import translation
from django.utils.translation import gettext, ngettext

from . import crypto, store
from .exceptions import TokenDecryptionError
from .models import Token

logger = logging.getLogger("django_bigoauth")

__all__ = ["DEFAULT_BATCH_SIZE", "RotationReport", "rotate_keys", "token_count"]

DEFAULT_BATCH_SIZE = 500
ENCRYPTED_FIELDS = Token.ENCRYPTED_FIELDS


@dataclass
class RotationReport:
    """What a run did, in counts of tokens (one token = one account's access and refresh token)."""

    rotated: int = 0
    already_current: int = 0
    #: rewritten by a refresh or a re-link between our read and our write (so already current)
    changed_meanwhile: int = 0
    batches: int = 0
    #: (account id, provider) of every token no configured key can decrypt
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def checked(self) -> int:
        """Tokens looked at so far, whatever came of it."""
        return self.rotated + self.already_current + self.changed_meanwhile + len(self.failed)

    def failed_accounts(self, limit: int = 20) -> str:
        """``"account 3 (bigin), account 9 (biggerplate)"``, cut after ``limit`` accounts; in the active language."""
        names = [
            gettext("account %(id)s (%(provider)s)") % {"id": account_id, "provider": provider}
            for account_id, provider in self.failed[:limit]
        ]
        more = len(self.failed) - limit
        if more > 0:
            names.append(ngettext("and %(count)d more", "and %(count)d more", more) % {"count": more})
        return ", ".join(names)


def token_count(using: str | None = None) -> int:
    """How many tokens a run will look at (for a progress bar)."""
    return Token.objects.using(using or router.db_for_write(Token)).count()


def rotate_keys(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    using: str | None = None,
    on_batch: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Re-encrypt every token not yet under the first key; see the module docstring.

    Raises ``ImproperlyConfigured`` when ``ENCRYPTION_KEYS`` holds something that is not a
    Fernet key, before touching any row. ``on_batch`` is called after each committed batch.
    Interrupted (``KeyboardInterrupt``), the batch in progress is rolled back and the batches
    before it stay committed: a second run picks up the rest.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    db = using or router.db_for_write(Token)
    crypto.encrypt("")  # fail on bad keys before the first batch, not inside it
    report = RotationReport()
    last_pk = 0
    while True:
        with transaction.atomic(using=db):
            rows = _read_batch(db, last_pk, batch_size)
            for pk, account_id, provider, generation, *raw_values in rows:
                outcome = _rotate_row(db, pk, generation, dict(zip(ENCRYPTED_FIELDS, raw_values, strict=True)))
                if outcome == "failed":
                    report.failed.append((account_id, provider))
                else:
                    setattr(report, outcome, getattr(report, outcome) + 1)
        if not rows:
            break
        last_pk = rows[-1][0]
        report.batches += 1
        if on_batch is not None:
            on_batch(report)
    if report.failed:
        with translation.override(None):  # log records stay in English, whatever language a command speaks
            failed = report.failed_accounts()
        logger.error(
            "Key rotation: %s tokens cannot be decrypted with any key in ENCRYPTION_KEYS and were left as they are: %s",
            len(report.failed),
            failed,
        )
    logger.info(
        "Key rotation: %s tokens re-encrypted, %s already under the first key, %s rewritten meanwhile, %s failed",
        report.rotated,
        report.already_current,
        report.changed_meanwhile,
        len(report.failed),
    )
    return report


# -- internals ----------------------------------------------------------------------------


def _read_batch(db: str, last_pk: int, batch_size: int) -> list[tuple]:
    queryset = Token.objects.using(db).filter(pk__gt=last_pk).order_by("pk")
    features = connections[db].features
    if features.has_select_for_update:
        # Lock the token rows only, not the accounts joined in for their provider.
        of = ("self",) if features.has_select_for_update_of else ()
        queryset = queryset.select_for_update(of=of)
    raw = store.raw_ciphertext_columns()
    columns = queryset.annotate(**raw).values_list("pk", "account_id", "account__provider", "generation", *raw)
    return list(columns[:batch_size])


def _rotate_row(db: str, pk: int, generation: int, raw: dict[str, str | None]) -> str:
    """Re-encrypt one token's values; returns the ``RotationReport`` counter it belongs to."""
    changes: dict[str, str] = {}
    for name, ciphertext in raw.items():
        if not ciphertext or crypto.is_under_primary_key(ciphertext):
            continue
        try:
            changes[name] = crypto.reencrypt(ciphertext)
        except TokenDecryptionError:
            return "failed"  # leave the whole row as it is
    if not changes:
        return "already_current"
    return "rotated" if store.replace_ciphertext(db, pk, generation, changes) else "changed_meanwhile"
