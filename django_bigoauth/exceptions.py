"""Every runtime error the app raises derives from :class:`BigOAuthError`.

Configuration mistakes are ``django.core.exceptions.ImproperlyConfigured`` instead, so that a
broad ``except BigOAuthError`` around an API call never hides a broken settings file.
No message here ever contains a token, a client secret, an authorisation code or a PKCE
verifier: callers pass masked values only.

Every exception is defined here, including those that other modules re-export where they
were first defined (``state.StateError``, ``providers.UnknownProvider``,
``operations.OperationError``), so one import covers them all.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AccountNotFound",
    "AccountNotStored",
    "AccountRevoked",
    "AccountsServerNotAllowed",
    "BigOAuthError",
    "CallbackError",
    "InvalidGrant",
    "MultipleAccountsFound",
    "OperationError",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "ReauthorizationRequired",
    "RefreshError",
    "RevokeError",
    "SelfClientError",
    "StateError",
    "TokenBindingError",
    "TokenDecryptionError",
    "TooManyPending",
    "UnknownProvider",
    "UnsafeURL",
]


class BigOAuthError(Exception):
    """Base of every runtime error of django_bigoauth."""


class ProviderError(BigOAuthError):
    """The provider answered, but not with something usable (HTTP 502 in views)."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class ProviderTimeout(ProviderError):
    """The provider did not answer within ``HTTP_TIMEOUT`` (HTTP 504 in views)."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached, or said to try again later (5xx, 429, throttled)."""


class InvalidGrant(ProviderError):
    """The provider refused the code or refresh token for good (``invalid_grant``, Zoho's ``invalid_code``)."""


class AccountNotStored(BigOAuthError):
    """The database failed while a linked account was being stored; nothing was (HTTP 503 in views)."""


class UnsafeURL(BigOAuthError, ValueError):
    """A token was about to go somewhere it must not: plain HTTP off loopback, or another host."""


class CallbackError(BigOAuthError):
    """The browser came back with something we must not act on (HTTP 400 in views)."""


class AccountsServerNotAllowed(CallbackError):
    """A Zoho accounts server outside ``ACCOUNTS_SERVERS``: the client secret must not go there."""


class SelfClientError(BigOAuthError, ValueError):
    """A self-client code cannot be exchanged as asked (an unknown data centre, an untrusted server)."""


class AccessDenied(CallbackError):
    """The user (or the provider) declined the authorisation request."""


class StateError(CallbackError):
    """The state is missing, unknown, expired, already used, or someone else's (also ``state.StateError``)."""


class TooManyPending(BigOAuthError):
    """A GET-started request would have to evict a POST-started one: it is not started (also ``state.TooManyPending``).

    Only a GET can start a request without a CSRF check (``AUTHORISE_ON_GET``), so only a GET
    may come from another site; it must not cancel what the user started on this site.
    """


class UnknownProvider(BigOAuthError, LookupError):
    """No provider with that slug is configured (also ``providers.UnknownProvider``)."""


class OperationError(BigOAuthError, ValueError):
    """An operation was asked for something it cannot do; the message says what to change.

    Raised by ``django_bigoauth.operations`` (also ``operations.OperationError``), which the
    management commands turn into a ``CommandError``.
    """


class RefreshError(BigOAuthError):
    """A refresh failed for a reason that may pass; the stored token is untouched."""


class ReauthorizationRequired(BigOAuthError):
    """The refresh token no longer works: the account must be linked again."""


class AccountRevoked(BigOAuthError):
    """The account was revoked or disconnected and has no token any more."""


class RevokeError(BigOAuthError):
    """The provider did not confirm the revocation."""


class AccountNotFound(BigOAuthError, LookupError):
    """``get_account()`` matched no account."""


class MultipleAccountsFound(BigOAuthError, LookupError):
    """``get_account()`` matched several accounts; pass ``label=`` to choose."""


class TokenDecryptionError(BigOAuthError):
    """A stored token cannot be decrypted with any key in ``ENCRYPTION_KEYS``, or was not encrypted for its row."""


class TokenBindingError(TokenDecryptionError):
    """A stored token's ciphertext was made for another account or column (copied there by someone
    with write access to the table); it is not used."""
