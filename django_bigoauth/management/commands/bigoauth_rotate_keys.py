"""``manage.py bigoauth_rotate_keys``: re-encrypt every stored token with the first key."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_bigoauth.rotation import DEFAULT_BATCH_SIZE, RotationReport, rotate_keys


class Command(BaseCommand):
    help = gettext_lazy(
        "Re-encrypt every stored access and refresh token with the first key of BIGOAUTH['ENCRYPTION_KEYS']. "
        "Safe to run twice or to interrupt: each batch is committed on its own."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=_("Tokens per transaction (default: %(default)s)."),
        )
        parser.add_argument("--database", default=None, help=_("The database alias to rotate (default: the router's)."))

    def handle(self, *args, batch_size: int, database: str | None, verbosity: int, **options) -> None:
        if batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        progress = self._progress if verbosity >= 2 else None
        try:
            report = rotate_keys(batch_size=batch_size, using=database, on_batch=progress)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            _("Re-encrypted %(rotated)d tokens; %(current)d were already under the first key.")
            % {"rotated": report.rotated, "current": report.already_current + report.changed_meanwhile}
        )
        if report.failed:
            raise CommandError(
                _(
                    "%(count)d tokens cannot be decrypted with any key in ENCRYPTION_KEYS and were left as they "
                    "are: %(accounts)s. Put back the key they were written with and run this again, or link "
                    "these accounts again."
                )
                % {"count": len(report.failed), "accounts": report.failed_accounts()}
            )

    def _progress(self, report: RotationReport) -> None:
        self.stdout.write(
            _("Batch %(batch)d done: %(rotated)d re-encrypted so far.")
            % {"batch": report.batches, "rotated": report.rotated}
        )
