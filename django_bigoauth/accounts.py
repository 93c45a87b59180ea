"""Finding accounts without writing ORM queries."""

from __future__ import annotations

from typing import Any

from .exceptions import AccountNotFound, MultipleAccountsFound
from .models import LinkedAccount

__all__ = ["get_account"]


def get_account(provider: str, user: Any = None, label: str | None = None) -> LinkedAccount:
    """The one account of ``provider`` owned by ``user`` (``None``: site-level accounts only).

    Revoked accounts are not considered. Pass ``label`` when there are several.
    """
    queryset = LinkedAccount.objects.filter(provider=provider).exclude(status=LinkedAccount.Status.REVOKED)
    queryset = queryset.filter(user__isnull=True) if user is None else queryset.filter(user=user)
    if label is not None:
        queryset = queryset.filter(label=label)
    matches = list(queryset[:21])
    owner = "the site" if user is None else f"user {getattr(user, 'pk', user)}"
    if not matches:
        suffix = f" labelled {label!r}" if label is not None else ""
        raise AccountNotFound(f"No {provider} account{suffix} is linked for {owner}.")
    if len(matches) > 1:
        labels = ", ".join(repr(account.label) for account in matches[:20])
        raise MultipleAccountsFound(
            f"{len(matches)} {provider} accounts are linked for {owner}; choose one with label= ({labels})."
        )
    return matches[0]
