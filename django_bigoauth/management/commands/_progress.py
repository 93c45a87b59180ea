"""Progress of a long command: a bar redrawn in place on a terminal, a line per batch elsewhere.

Nothing at ``--verbosity 0``. On a terminal the bar is one line rewritten with ``\\r``; lines
the command prints meanwhile (a failure) go above it. Anywhere else (a pipe, a log file, cron)
there are no control characters: one plain line each time another ``every`` items are done,
and one at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import OutputWrapper

BAR_WIDTH = 30
#: a terminal is redrawn at most this often (seconds), and always at the end
REDRAW_INTERVAL = 0.1


class Progress:
    def __init__(
        self,
        stdout: OutputWrapper,
        *,
        total: int,
        every: int,
        verbosity: int,
        describe: Callable[[int, int], str],
    ) -> None:
        """``describe(done, total)`` is the text after the bar, or the whole line off a terminal."""
        self.stdout = stdout
        self.total = total
        self.every = max(1, every)
        self.quiet = verbosity < 1
        self.tty = stdout.isatty()
        self.describe = describe
        self.done = 0
        self._drawn = False
        self._last_draw = 0.0
        self._last_line = 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.quiet:
            return
        if self.tty:
            now = time.monotonic()
            if self.done >= self.total or now - self._last_draw >= REDRAW_INTERVAL:
                self._draw()
                self._last_draw = now
        elif self.done - self._last_line >= self.every or (self.done >= self.total > self._last_line):
            self.stdout.write(self.describe(self.done, self.total))
            self._last_line = self.done

    def write(self, line: str, style: Callable[[str], str] | None = None) -> None:
        """Print ``line`` (a failure, say) above the bar, which is then drawn again below it."""
        if self._drawn:
            self.stdout.write("\r\x1b[K", ending="")
        self.stdout.write(line, style_func=style)
        if self._drawn:
            self._draw()

    def finish(self) -> None:
        """End the bar's line, or print the last count if it was not printed yet."""
        if self.quiet:
            return
        if self.tty:
            if self.total:
                self._draw()
            if self._drawn:
                self.stdout.write("")
                self._drawn = False
        elif self.done != self._last_line:
            self.stdout.write(self.describe(self.done, self.total))
            self._last_line = self.done

    def _draw(self) -> None:
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stdout.write(f"\r[{bar}] {self.describe(self.done, self.total)}\x1b[K", ending="")
        self.stdout.flush()
        self._drawn = True
