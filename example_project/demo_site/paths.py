"""Let the demo run from a checkout without installing django_bigoauth first."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent.parent
REPOSITORY = EXAMPLE_DIR.parent


def add_repository_to_path() -> None:
    """Put example_project/ and the checkout's root on ``sys.path``.

    The checkout's own ``django_bigoauth`` then wins over an older installed copy, so the demo
    always shows the code next to it.
    """
    for path in (str(REPOSITORY), str(EXAMPLE_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)
