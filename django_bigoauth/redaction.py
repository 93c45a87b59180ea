"""How secrets look when they must be shown at all: the first four characters and an ellipsis."""

from __future__ import annotations

VISIBLE = 4


def mask(secret: str | None) -> str:
    if not secret:
        return ""
    return f"{secret[:VISIBLE]}…"
