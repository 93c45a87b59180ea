"""Link Biggerplate and Bigin (Zoho) accounts to a Django site and keep their tokens fresh."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import LinkedAccount

__version__ = "0.1.0"

__all__ = ["__version__", "aget_account", "get_account"]


def get_account(provider: str, user: Any = None, label: str | None = None) -> LinkedAccount:
    """The one account of ``provider`` owned by ``user`` (``None``: site-level accounts only).

    Revoked accounts are not considered. Pass ``label`` when there are several. No match raises
    :class:`~django_bigoauth.exceptions.AccountNotFound`; several raise
    :class:`~django_bigoauth.exceptions.MultipleAccountsFound`, whose message lists the labels.
    """
    # Imported here so that ``import django_bigoauth`` works before Django is set up
    # (``setup.py``, settings modules).
    from .accounts import get_account as _get_account

    return _get_account(provider, user=user, label=label)


async def aget_account(provider: str, user: Any = None, label: str | None = None) -> LinkedAccount:
    """:func:`get_account` for async code, through Django's async ORM: same arguments, same exceptions.

    ``user`` must be a loaded user (``await request.auser()``), not ``request.user``, whose lazy
    loading is a sync query. Needs the ``async`` extra.
    """
    from .accounts import aget_account as _aget_account

    return await _aget_account(provider, user=user, label=label)
