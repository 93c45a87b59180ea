"""``manage.py bigoauth_revoke --account ID``: revoke at the provider where it can, remove the tokens."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from django_bigoauth.models import provider_display_name
from django_bigoauth.operations import revoke_account_by_id
from django_bigoauth.revocation import RevokeOutcome

from ._base import TranslatedCommand
from ._errors import app_log_off_the_terminal, reported_as_command_error


class Command(TranslatedCommand):
    help = gettext_noop(
        "Revoke an account's tokens at the provider (Zoho) and remove them here. For a provider with no revoke "
        "endpoint (Biggerplate) the tokens are removed here only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", type=int, required=True, metavar="ID", help=_("the account to revoke"))

    def handle(self, *args: Any, **options: Any) -> None:
        with app_log_off_the_terminal(options["verbosity"]):  # the command reports every outcome itself
            self._handle(**options)

    def _handle(self, **options: Any) -> None:
        with reported_as_command_error():
            result = revoke_account_by_id(options["account"])
        account = result.account
        values = {"id": account.pk, "account": account, "provider": provider_display_name(account.provider)}
        outcome = result.outcome
        if outcome is RevokeOutcome.ALREADY_REVOKED:
            self.stdout.write(_("[%(id)s] %(account)s: already revoked; nothing to do.") % values)
        elif outcome is RevokeOutcome.REVOKED:
            self.stdout.write(
                self.style.SUCCESS(_("[%(id)s] %(account)s: revoked at %(provider)s; its tokens are removed.") % values)
            )
        elif outcome is RevokeOutcome.SUPERSEDED:
            self.stdout.write(
                self.style.WARNING(
                    _(
                        "[%(id)s] %(account)s: its old token was revoked at %(provider)s, but the account was linked "
                        "again meanwhile: the new link stays active. Run this again to revoke it too."
                    )
                    % values
                )
            )
        elif outcome is RevokeOutcome.REMOVED_LOCALLY:
            self.stdout.write(
                self.style.WARNING(
                    _(
                        "[%(id)s] %(account)s: its tokens are removed here. %(provider)s has no revoke endpoint: to "
                        "cut the site's access there too, remove the app in your %(provider)s account settings."
                    )
                    % values
                )
            )
        else:
            self.stdout.write(
                self.style.WARNING(_("[%(id)s] %(account)s: no token that could be sent; marked revoked.") % values)
            )
