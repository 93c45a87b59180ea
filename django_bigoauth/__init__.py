"""Link Biggerplate and Bigin (Zoho) accounts to a Django site and keep their tokens fresh."""

__version__ = "0.1.0"

__all__ = ["__version__", "get_account"]


def get_account(provider: str, user=None, label: str | None = None):
    """Find one linked account without writing ORM queries.

    Imported lazily so that ``import django_bigoauth`` works before Django is set up
    (``setup.py``, settings modules).
    """
    from .accounts import get_account as _get_account

    return _get_account(provider, user=user, label=label)
