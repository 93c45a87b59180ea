"""What every ``bigoauth_*`` command shares: its ``--help`` in the language active when it is printed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext


class TranslatedCommand(BaseCommand):
    """A command whose ``help`` is written with ``gettext_noop`` and translated when its parser is made.

    Not ``gettext_lazy``: argparse runs regular expressions over the description, which a lazy
    string is not (``--help`` raised TypeError). Not ``gettext`` in the class body either: that
    translates once, when the module is first imported, in whatever language was active then.
    """

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        self.help = gettext(type(self).help)
        return super().create_parser(prog_name, subcommand, **kwargs)
