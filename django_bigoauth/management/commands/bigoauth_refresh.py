"""``manage.py bigoauth_refresh``: refresh tokens now (for those who want a cron job; none is needed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from django_bigoauth.operations import refresh_accounts

from ._errors import one_line, reported_as_command_error


class Command(BaseCommand):
    help = _(
        "Refresh access tokens now, through the same locked path as get_access_token(). Tokens refresh lazily "
        "anyway; this is for cron users and for testing a link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--account", type=int, action="append", metavar="ID", help=_("refresh this account (repeatable)")
        )
        which.add_argument("--all", action="store_true", help=_("refresh every active account"))
        which.add_argument(
            "--expiring-within",
            type=float,
            metavar="SECONDS",
            help=_("refresh active accounts whose token expires within SECONDS"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with reported_as_command_error():
            results = refresh_accounts(
                account_ids=options["account"],
                all_active=options["all"],
                expiring_within=options["expiring_within"],
            )
        if not results:
            self.stdout.write(_("No accounts to refresh."))
            return
        for result in results:
            line = _("Account %(id)s (%(provider)s, %(label)s): %(message)s") % {
                "id": result.account.pk,
                "provider": result.account.provider,
                "label": result.account.label or "-",
                "message": one_line(result.message),
            }
            self.stdout.write(self.style.SUCCESS(line) if result.ok else self.style.ERROR(line))
        failed = sum(not result.ok for result in results)
        if failed:
            raise CommandError(
                ngettext(
                    "%(failed)d of %(total)d account could not be refreshed.",
                    "%(failed)d of %(total)d accounts could not be refreshed.",
                    len(results),
                )
                % {"failed": failed, "total": len(results)}
            )
