"""``manage.py bigoauth_accounts``: a table of linked accounts and how long their tokens last."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from django_bigoauth.exceptions import OperationError
from django_bigoauth.models import LinkedAccount
from django_bigoauth.operations import account_rows, check_provider_slug, longest_values

from ._base import TranslatedCommand
from ._errors import one_line, reported_as_command_error


class Command(TranslatedCommand):
    help = gettext_noop(
        "List linked accounts: id, provider, owner, label, data centre, status, when the token expires."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", help=_("only accounts of this provider slug"))

    def handle(self, *args: Any, **options: Any) -> None:
        provider = options["provider"]
        if provider is not None:
            try:
                check_provider_slug(provider)
            except OperationError as exc:
                # A usage error, like a mistyped option: exit status 2.
                raise CommandError(
                    one_line(str(exc)) + " " + _("Run bigoauth_accounts without --provider to list every account."),
                    returncode=2,
                ) from None
        with reported_as_command_error():
            self._print_table(provider)

    def _print_table(self, provider: str | None) -> None:
        # Streamed: one aggregate query sizes the columns, then the rows are read and printed
        # a batch at a time, so ten thousand accounts take no more memory than ten.
        longest = longest_values(provider=provider)
        if not longest:
            self.stdout.write(_("No linked accounts."))
            return
        header = [_("id"), _("provider"), _("owner"), _("label"), _("data centre"), _("status"), _("token expires")]
        statuses = [str(label) for label in LinkedAccount.Status.labels]
        widths = [
            max(len(header[0]), longest.get("id", 0)),
            max(len(header[1]), longest.get("provider", 0)),
            max(len(header[2]), longest.get("owner", 0), len(_("(site)"))),
            max(len(header[3]), longest.get("label", 0), 1),
            max(len(header[4]), longest.get("data_centre", 0), 1),
            max(len(header[5]), *map(len, statuses)),
            0,
        ]
        self._line(header, widths)
        for row in account_rows(provider=provider):
            if row.has_token:
                expires = row.expires
                if row.refreshes_on_next_use:
                    expires = _("%(expiry)s (refreshed on next use)") % {"expiry": expires}
            else:
                expires = _("no token")
            cells = [
                str(row.id),
                row.account.provider,
                row.owner or _("(site)"),
                row.account.label or "-",
                row.account.data_centre or "-",
                row.status,
                expires,
            ]
            self._line(cells, widths)

    def _line(self, cells: list[str], widths: list[int]) -> None:
        # Django's durations hold no-break spaces ("59\xa0minutes"): plain ones in a terminal table.
        text = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        self.stdout.write(text.replace("\xa0", " ").rstrip())
