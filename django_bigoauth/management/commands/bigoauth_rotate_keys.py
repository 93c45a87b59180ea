"""``manage.py bigoauth_rotate_keys``: re-encrypt every stored token with the first key."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from django_bigoauth.rotation import DEFAULT_BATCH_SIZE, RotationReport, rotate_keys, token_count

from ._base import TranslatedCommand
from ._errors import app_log_off_the_terminal
from ._progress import Progress


class Command(TranslatedCommand):
    help = gettext_noop(
        "Re-encrypt every stored access and refresh token with the first key of BIGOAUTH['ENCRYPTION_KEYS']. "
        "Safe to run twice or to interrupt: each batch is committed on its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=_("Tokens per transaction (default: %(default)s)."),
        )
        parser.add_argument("--database", default=None, help=_("The database alias to rotate (default: the router's)."))

    def handle(self, *args: Any, verbosity: int, **options: Any) -> None:
        with app_log_off_the_terminal(verbosity):  # the command reports every outcome itself
            self._handle(verbosity=verbosity, **options)

    def _handle(self, *, batch_size: int, database: str | None, verbosity: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        # A bar on a terminal, a line per batch elsewhere, nothing with --verbosity 0; the
        # count is one query, and the rows are read a batch at a time.
        progress = Progress(
            self.stdout, total=token_count(database), every=batch_size, verbosity=verbosity, describe=_describe
        )
        last: list[RotationReport] = []

        def on_batch(report: RotationReport) -> None:
            last[:] = [report]
            progress.advance(report.checked - progress.done)

        try:
            report = rotate_keys(batch_size=batch_size, using=database, on_batch=on_batch)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            progress.finish()
            rotated = last[0].rotated if last else 0
            raise CommandError(
                ngettext(
                    "Interrupted: %(rotated)d token was re-encrypted in the batches committed so far; the batch "
                    "in progress was rolled back. Run the command again to finish: tokens already under the "
                    "first key are skipped.",
                    "Interrupted: %(rotated)d tokens were re-encrypted in the batches committed so far; the batch "
                    "in progress was rolled back. Run the command again to finish: tokens already under the "
                    "first key are skipped.",
                    rotated,
                )
                % {"rotated": rotated},
                returncode=130,
            ) from None
        progress.finish()
        current = report.already_current + report.changed_meanwhile
        if verbosity:
            self.stdout.write(
                ngettext("Re-encrypted %(count)d token;", "Re-encrypted %(count)d tokens;", report.rotated)
                % {"count": report.rotated}
                + " "
                + ngettext(
                    "%(count)d was already under the first key.",
                    "%(count)d were already under the first key.",
                    current,
                )
                % {"count": current}
            )
        if report.failed:
            raise CommandError(
                ngettext(
                    "%(count)d token cannot be decrypted with any key in ENCRYPTION_KEYS and was left as it is: "
                    "%(accounts)s. Put back the key it was written with and run this again, or link this "
                    "account again.",
                    "%(count)d tokens cannot be decrypted with any key in ENCRYPTION_KEYS and were left as they "
                    "are: %(accounts)s. Put back the key they were written with and run this again, or link "
                    "these accounts again.",
                    len(report.failed),
                )
                % {"count": len(report.failed), "accounts": report.failed_accounts()}
            )


def _describe(done: int, total: int) -> str:
    return ngettext("%(done)d of %(total)d token checked.", "%(done)d of %(total)d tokens checked.", total) % {
        "done": done,
        "total": total,
    }
