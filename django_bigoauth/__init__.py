"""Link Biggerplate and Bigin (Zoho) accounts to a Django site and keep their tokens fresh."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import LinkedAccount

__version__ = "0.1.0"

__all__ = ["__version__", "aget_account", "get_account"]


def get_account(provider: str, user: Any = None, label: str | None = None) -> LinkedAccount:
    """Find one linked account without writing ORM queries.

    Imported lazily so that ``import django_bigoauth`` works before Django is set up
    (``setup.py``, settings modules).
    """
    from .accounts import get_account as _get_account

    return _get_account(provider, user=user, label=label)


async def aget_account(provider: str, user: Any = None, label: str | None = None) -> LinkedAccount:
    """``get_account()`` for async code (Django's async ORM); needs the ``async`` extra."""
    from .accounts import aget_account as _aget_account

    return await _aget_account(provider, user=user, label=label)
