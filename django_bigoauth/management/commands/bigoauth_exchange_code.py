"""``manage.py bigoauth_exchange_code bigin <code>``: link a site-level Bigin account from a self-client code."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from django_bigoauth.operations import exchange_self_client_code

from ._base import TranslatedCommand
from ._errors import reported_as_command_error


class Command(TranslatedCommand):
    help = gettext_noop(
        "Exchange a code generated in Zoho's API console (self client) for tokens and store the account. "
        "The account is site-level unless --user names its owner. Tokens are never printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", help=_("provider slug, e.g. bigin"))
        parser.add_argument("code", help=_("the code from Zoho's API console (single use, valid minutes)"))
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--accounts-server",
            help=_("the accounts server to exchange the code at; must be one in ACCOUNTS_SERVERS"),
        )
        where.add_argument(
            "--data-centre",
            help=_("data centre of the Zoho account (us, eu, in, au, cn, jp, sa, ca, uk); default: DATA_CENTRE"),
        )
        parser.add_argument("--label", default="", help=_("a name for the account, to tell several apart"))
        parser.add_argument("--user", help=_("username of the account's owner; default: a site-level account"))

    def handle(self, *args: Any, **options: Any) -> None:
        with reported_as_command_error():
            account, created = exchange_self_client_code(
                options["provider"],
                options["code"],
                accounts_server=options["accounts_server"],
                data_centre=options["data_centre"],
                label=options["label"],
                username=options["user"],
            )
        # Named as every command names an account: "[3] Bigin account “Acme Ltd” (site)".
        message = _("[%(id)s] %(account)s: linked; data centre %(dc)s.")
        if not created:
            message = _("[%(id)s] %(account)s: linked again (updated); data centre %(dc)s.")
        self.stdout.write(
            self.style.SUCCESS(message % {"id": account.pk, "account": account, "dc": account.data_centre or "-"})
        )
