"""Signals sent by django_bigoauth.

Each is sent with ``sender=LinkedAccount`` and ``account=`` (the :class:`~django_bigoauth.models.LinkedAccount`).
The token signals are sent after the refresh's claim is released and the write is done
(committed, unless you are inside a transaction of your own), once, by the caller that made
the change; with the async API, in the worker thread that made it.
"""

from django.dispatch import Signal

__all__ = ["account_linked", "account_revoked", "reauthorization_required", "token_refreshed"]

#: An account was linked or re-linked; ``created`` tells which.
account_linked = Signal()
#: A refresh was stored (sent only by the caller that made it).
token_refreshed = Signal()
#: The refresh token stopped working: the account moved to ``needs_reauth`` and must be linked
#: again (sent once per transition).
reauthorization_required = Signal()
#: The account was revoked or disconnected; ``confirmed=True`` if the provider confirmed.
account_revoked = Signal()
