"""Signals sent by django_bigoauth. Each is sent with ``sender=LinkedAccount`` and ``account=``."""

from django.dispatch import Signal

__all__ = ["account_linked", "account_revoked", "reauthorization_required", "token_refreshed"]

#: an account was linked or re-linked (``created`` tells which)
account_linked = Signal()
#: a token was refreshed
token_refreshed = Signal()
#: the refresh token stopped working; the account needs to be linked again
reauthorization_required = Signal()
#: the account was revoked or disconnected (``confirmed``: the provider confirmed)
account_revoked = Signal()
