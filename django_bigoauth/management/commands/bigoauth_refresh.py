"""``manage.py bigoauth_refresh``: refresh tokens now (for those who want a cron job; none is needed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from django_bigoauth.operations import RefreshResult, refresh_accounts

from ._base import TranslatedCommand
from ._errors import app_log_off_the_terminal, one_line, reported_as_command_error
from ._progress import Progress

#: accounts read per query, and (off a terminal) refreshed between two progress lines
BATCH_SIZE = 100


class Command(TranslatedCommand):
    help = gettext_noop(
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
        parser.add_argument(
            "--after",
            type=int,
            metavar="ID",
            help=_("with --all or --expiring-within: only accounts with a larger id (to go on after an interruption)"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with app_log_off_the_terminal(options["verbosity"]):  # the command reports every outcome itself
            self._handle(**options)

    def _handle(self, **options: Any) -> None:
        verbosity = options["verbosity"]
        with reported_as_command_error():
            run = refresh_accounts(
                account_ids=options["account"],
                all_active=options["all"],
                expiring_within=options["expiring_within"],
                after=options["after"],
                batch_size=BATCH_SIZE,
            )
        if not run.total:
            if verbosity:
                self.stdout.write(_("No accounts to refresh."))
            return
        # Named accounts get a line each; a run over many shows progress and its failures only
        # (every account with --verbosity 2). Failures are printed at any verbosity, one line each.
        each = bool(options["account"]) or verbosity >= 2
        progress = Progress(
            self.stdout,
            total=run.total if not each else 0,
            every=BATCH_SIZE,
            verbosity=verbosity if not each else 0,
            describe=_describe_progress,
        )
        failed: list[RefreshResult] = []
        last_done = None
        try:
            for result in run:
                if not result.ok:
                    failed.append(result)
                    if run.total > 1:  # a single account's failure is the command's error line
                        progress.write(self._line(result), self.style.ERROR)
                elif each and verbosity:
                    progress.write(self._line(result), self.style.SUCCESS)
                last_done = result.account.pk
                progress.advance()
        except KeyboardInterrupt:
            progress.finish()
            message = self._interrupted(progress.done, run.total, last_done, options)
            raise CommandError(message, returncode=130) from None
        progress.finish()
        if not failed:
            if verbosity and not each:
                self.stdout.write(
                    ngettext("Refreshed %(count)d account.", "Refreshed all %(count)d accounts.", run.total)
                    % {"count": run.total}
                )
            return
        if run.total == 1:
            raise CommandError(self._line(failed[0]))
        raise CommandError(
            ngettext(
                "%(failed)d of %(total)d account could not be refreshed.",
                "%(failed)d of %(total)d accounts could not be refreshed.",
                run.total,
            )
            % {"failed": len(failed), "total": run.total}
        )

    def _line(self, result: RefreshResult) -> str:
        return _("[%(id)s] %(account)s: %(message)s") % {
            "id": result.account.pk,
            "account": result.account,
            "message": one_line(result.message),
        }

    def _interrupted(self, done: int, total: int, last_done: int | None, options: dict[str, Any]) -> str:
        text = _("Interrupted after %(done)d of %(total)d accounts; the refreshes made so far are stored.") % {
            "done": done,
            "total": total,
        }
        if last_done is None or options["account"]:
            return text + " " + _("Run the command again.")
        which = "--all" if options["all"] else f"--expiring-within {options['expiring_within']:g}"
        return (
            text
            + " "
            + _("To go on from there: bigoauth_refresh %(which)s --after %(id)s")
            % {
                "which": which,
                "id": last_done,
            }
        )


def _describe_progress(done: int, total: int) -> str:
    return ngettext(
        "%(done)d of %(total)d account refreshed or tried.",
        "%(done)d of %(total)d accounts refreshed or tried.",
        total,
    ) % {"done": done, "total": total}
