"""Stand-ins for a command's stdout: a terminal (``isatty()`` true) that records what was written."""

from __future__ import annotations

from io import StringIO


class Terminal(StringIO):
    """What a person at a terminal sees, control characters included (``\\r`` redraws a line)."""

    def isatty(self) -> bool:
        return True
