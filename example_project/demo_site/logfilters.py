"""Keep OAuth secrets out of the development server's request log."""

from __future__ import annotations

import logging
import re

# Query parameters whose values must never be logged: the authorisation code, the state that
# guards it, and (for completeness) anything token-like a client might put in a URL.
SECRET_PARAMS = ("code", "state", "access_token", "refresh_token", "code_verifier", "client_secret")
_PATTERN = re.compile(r"(?P<key>[?&](?:" + "|".join(SECRET_PARAMS) + r")=)(?P<value>[^&\s\"]*)")


def redact(text: str) -> str:
    """``?code=abc&x=1`` -> ``?code=[redacted]&x=1``."""
    return _PATTERN.sub(lambda match: f"{match['key']}[redacted]", text)


class RedactOAuthQuery(logging.Filter):
    """Rewrites a record's message and arguments so that no secret query value is left in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
