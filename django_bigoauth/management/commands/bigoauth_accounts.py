"""``manage.py bigoauth_accounts``: a table of linked accounts and how long their tokens last."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _

from django_bigoauth.operations import account_rows

from ._errors import reported_as_command_error


class Command(BaseCommand):
    help = _("List linked accounts: id, provider, owner, label, data centre, status, token expires in.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", help=_("only accounts of this provider slug"))

    def handle(self, *args: Any, **options: Any) -> None:
        with reported_as_command_error():
            rows = account_rows(provider=options["provider"])
        if not rows:
            self.stdout.write(_("No linked accounts."))
            return
        header = [_("id"), _("provider"), _("owner"), _("label"), _("data centre"), _("status"), _("expires in")]
        lines = [
            [str(row.id), row.provider, row.owner, row.label, row.data_centre, row.status, row.expires_in]
            for row in rows
        ]
        widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
        for cells in [header, *lines]:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
