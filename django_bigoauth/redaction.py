"""How secrets and provider-supplied text look when they must be shown or stored at all.

Secrets: the first four characters and an ellipsis. Text a provider chose (an ``error``
code, an organisation name): without control characters, so that it can neither forge a
log line (CR, LF) nor drive a terminal (ANSI escape sequences) when it is printed.
"""

from __future__ import annotations

import re
import unicodedata

from django.views.decorators.debug import sensitive_variables

__all__ = ["VISIBLE", "clean_text", "mask", "printable"]

VISIBLE = 4

# CSI ("ESC [ ... final byte") and OSC ("ESC ] ... BEL or ESC \\") sequences, removed whole so
# that no "[31m" residue is left behind; any other control character is removed on its own.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]")
# Unicode format characters that reorder text on a screen (RLO and friends).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@sensitive_variables()
def mask(secret: str | None) -> str:
    if not secret:
        return ""
    return f"{secret[:VISIBLE]}…"


def printable(text: object, limit: int = 200) -> str:
    """``text`` as one line fit for a log record or a terminal, at most ``limit`` characters.

    C0 and C1 control characters, DEL, ANSI escape sequences and bidirectional overrides are
    removed; newlines and tabs become spaces.
    """
    value = _ANSI.sub("", str(text))
    value = "".join(
        " " if char in "\t\n\r\v\f" else char
        for char in value
        if char in "\t\n\r\v\f" or (unicodedata.category(char) != "Cc" and char not in _BIDI)
    )
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def clean_text(value: str, limit: int | None = None) -> str:
    """``value`` without what no database column should hold: NUL and other control characters,
    lone surrogates (replaced by "?"); shortened to ``limit`` with an ellipsis."""
    value = "".join(char for char in value if char >= " " and char != "\x7f" and not "\x80" <= char <= "\x9f")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    return value
