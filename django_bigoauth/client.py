"""What the app asks a provider's token, revoke and identity endpoints, and what their answers mean.

The bytes travel through ``transport.py`` (deadline, size cap, URL rules); this module builds
the requests (client credentials in the form body, never the query string, never HTTP
Basic), reads the replies, and turns every way a provider can fail into one exception of
``exceptions.py``. Callers never see ``requests`` errors.

Every token reply, whether it answers a code exchange, a refresh or a self-client code, is
checked by :func:`check_token_reply` before anyone stores or sends what it holds.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, TypeGuard

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import idtoken
from .exceptions import InvalidGrant, ProviderError, ProviderUnavailable, UnsafeURL
from .netloc import is_origin, is_safe_endpoint
from .providers import Identity, Provider, TokenReply
from .redaction import clean_text, printable
from .transport import NOT_JSON, Reply, get_transport

__all__ = [
    "MAX_TOKEN_LENGTH",
    "check_token_reply",
    "exchange_code",
    "fetch_identity",
    "read_token_reply",
    "refresh",
    "revoke",
    "revoke_unused_grant",
]

logger = logging.getLogger("django_bigoauth")

#: Longest token accepted: JSON Web Token access tokens run to a few KB.
MAX_TOKEN_LENGTH = 8192
#: RFC 6749 appendix A's VSCHAR without the space: a token goes into a header and a form body as it is.
_TOKEN = re.compile(r"[\x21-\x7e]+")
#: Longest API domain accepted: what ``LinkedAccount.api_domain`` (a URLField) holds.
_MAX_API_DOMAIN = 200
_MAX_TOKEN_TYPE = 40


@sensitive_variables()
def exchange_code(
    provider: Provider,
    code: str,
    *,
    redirect_uri: str | None,
    code_verifier: str | None = None,
    accounts_server: str = "",
    nonce_digest: str = "",
) -> TokenReply:
    """Trade an authorisation code for tokens. ``redirect_uri=None`` for a Zoho self client.

    For a provider that validates ID tokens (``provider.id_tokens``), the reply's ID token is
    validated (``idtoken.validate_id_token``) and its claims returned in ``id_claims``;
    ``nonce_digest`` names the nonce the authorisation request sent, and then an ID token is
    required. Any failure revokes the new grant (best effort) and raises ``ProviderError``.
    """
    form = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    if code_verifier:
        form["code_verifier"] = code_verifier
    reply = read_token_reply(provider, _post_token_form(provider, form, accounts_server))
    try:
        reply = check_token_reply(provider, reply)
        if provider.id_tokens and (reply.id_token or nonce_digest):
            if not reply.id_token:
                raise ProviderError(
                    f"{provider.display_name} sent no ID token, though the sign-in asked for one (scope openid)."
                )
            claims = idtoken.validate_id_token(provider, reply.id_token, expected_nonce_digest=nonce_digest)
            reply = dataclasses.replace(reply, id_claims=claims)
        return reply
    except ProviderError:
        # The provider issued tokens we cannot use: do not leave the grant alive.
        revoke_unused_grant(provider, reply, accounts_server=accounts_server)
        raise


@sensitive_variables()
def refresh(provider: Provider, refresh_token: str, *, accounts_server: str = "") -> TokenReply:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return check_token_reply(provider, read_token_reply(provider, _post_token_form(provider, form, accounts_server)))


@sensitive_variables()
def revoke(provider: Provider, token: str, *, token_type_hint: str, accounts_server: str = "") -> None:
    """Ask the provider to revoke ``token`` (RFC 7009); raises ``ProviderError`` unless it confirms.

    ``token_type_hint`` is ``"refresh_token"`` or ``"access_token"``. ``InvalidGrant`` means
    the provider no longer knows the token: nothing is left to revoke.
    """
    url = provider.get_revoke_url(accounts_server)
    form = {
        "token": token,
        "token_type_hint": token_type_hint,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    name = provider.display_name
    reply = get_transport().post_form(url, form, what=f"{name}'s revoke endpoint")
    status = reply.status
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"{name} answered HTTP {status} to the revoke request.", status=status)
    data = reply.json()
    if isinstance(data, dict) and data.get("error"):
        error_code = _code(data["error"])
        # A token the provider no longer knows is as revoked as it gets (RFC 7009 section 2.2).
        dead = error_code == "invalid_token" or provider.error_for(error_code, status) is InvalidGrant
        exc_class = InvalidGrant if dead else ProviderError
        raise exc_class(f"{name} refused the revoke request ({error_code}).", status=status, error_code=error_code)
    if status >= 400:
        raise ProviderError(f"{name} answered HTTP {status} to the revoke request.", status=status)
    if isinstance(data, dict) and data.get("status") not in (None, "success"):
        # Zoho's way of saying no: HTTP 200 with {"status": "failure"}.
        raise ProviderError(f"{name} did not confirm the revocation.", status=status)


@sensitive_variables()
def revoke_unused_grant(provider: Provider, reply: TokenReply, *, accounts_server: str = "") -> None:
    """Best effort: revoke the tokens of a link that failed after the exchange. Never raises.

    One attempt, with the refresh token when it can be sent (its revocation ends the grant),
    else the access token. A failure is logged, never shown: the link's own error is what the
    user needs to see.
    """
    if not provider.supports_revoke:
        return
    candidates = [(reply.refresh_token, "refresh_token"), (reply.access_token, "access_token")]
    sendable = [(token, hint) for token, hint in candidates if _sendable(token)]
    if not sendable:
        return
    token, hint = sendable[0]
    try:
        revoke(provider, token, token_type_hint=hint, accounts_server=accounts_server)
    except (ProviderError, UnsafeURL) as exc:
        logger.warning(
            "A failed %s link may have left its grant alive at the provider: revoking it failed (%s)",
            provider.slug,
            type(exc).__name__,
        )
    else:
        logger.info("Revoked the unused grant of a failed %s link at the provider", provider.slug)


@sensitive_variables()
def _sendable(token: object) -> TypeGuard[str]:
    return isinstance(token, str) and len(token) <= MAX_TOKEN_LENGTH and bool(_TOKEN.fullmatch(token))


@sensitive_variables()
def fetch_identity(provider: Provider, access_token: str, *, api_domain: str = "") -> Identity | None:
    """Ask the provider's API who the token belongs to; ``None`` when its answer names nobody.

    Two kinds of failure, because they mean different things to the caller (``linking``):

    * the provider could not be asked: a timeout (``ProviderTimeout``), no connection, HTTP 5xx
      or 429 (``ProviderUnavailable``). Asking again later would tell, so the caller must not
      guess in the meantime.
    * the provider answered and named nobody: HTTP 401/403 (Zoho's ``OAUTH_SCOPE_MISMATCH``
      without ``ZohoBigin.org.READ``) or another 4xx, a 200 that ``parse_identity`` cannot
      read, or a ``parse_identity`` that raises (a custom provider reading ``data["id"]``).
      Logged as a WARNING with the provider and the HTTP status, never the reply or the token.
    """
    try:
        url = provider.get_identity_url(api_domain)
    except UnsafeURL as exc:
        raise ProviderError(str(exc)) from None
    if not url:
        return None
    name = provider.display_name
    reply = get_transport().get(
        url,
        what=f"{name}'s identity endpoint",
        headers={"Authorization": provider.authorization_header(access_token)},
    )
    status = reply.status
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"{name}'s identity endpoint answered HTTP {status}.", status=status)
    if status != 200:
        _names_nobody(provider, status, "")
        return None
    data = reply.json()
    try:
        identity = provider.parse_identity(None if data is NOT_JSON else data)
    except ProviderError:
        raise  # the provider class says the reply is unusable: that is an answer too
    except Exception as exc:  # noqa: BLE001 - a provider class's bug must not become a 500
        _names_nobody(provider, status, f", which could not be read ({type(exc).__name__})")
        return None
    identity = _usable_identity(identity)
    if identity is None:
        _names_nobody(provider, status, ", which names nobody")
    return identity


def _names_nobody(provider: Provider, status: int, detail: str) -> None:
    logger.warning(
        "Could not tell whose %s token this is: its identity endpoint answered HTTP %s%s",
        provider.slug,
        status,
        detail,
    )


def _usable_identity(identity: Any) -> Identity | None:
    """``identity`` with string fields, or ``None`` when it is not one or has no external id."""
    if not isinstance(identity, Identity) or identity.external_id in (None, ""):
        return None
    if isinstance(identity.external_id, str) and isinstance(identity.label, str):
        return identity
    return Identity(external_id=str(identity.external_id), label="" if identity.label is None else str(identity.label))


# -- token replies ------------------------------------------------------------------------------


@sensitive_variables()
def _post_token_form(provider: Provider, form: dict[str, str], accounts_server: str) -> Reply:
    grant_type = form["grant_type"]
    body = {
        **form,
        **provider.extra_token_params(grant_type),
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    url = provider.get_token_url(accounts_server)
    return get_transport().post_form(url, body, what=f"{provider.display_name}'s token endpoint")


@sensitive_variables()
def read_token_reply(provider: Provider, reply: Reply) -> TokenReply:
    """A token reply, or the exception it stands for.

    Zoho answers errors with HTTP 200 and an ``error`` field, so a reply without
    ``access_token`` is an error whatever its status.
    """
    status = reply.status
    name = provider.display_name
    data = reply.json()
    error_code = _code(data.get("error")) if isinstance(data, dict) and data.get("error") else ""
    if error_code:
        exc_class = provider.error_for(error_code, status)
        if status == 429 or status >= 500:
            exc_class = ProviderUnavailable
        raise exc_class(f"{name} refused the token request ({error_code}).", status=status, error_code=error_code)
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"{name}'s token endpoint answered HTTP {status}.", status=status)
    if 300 <= status < 400:
        # Never followed: the form holds the client secret and the code or refresh token.
        raise ProviderError(f"{name}'s token endpoint answered with a redirect (HTTP {status}).", status=status)
    if data is NOT_JSON:
        raise ProviderError(
            f"{name}'s token endpoint answered HTTP {status} with something that is not JSON.", status=status
        )
    if status >= 400:
        raise ProviderError(f"{name}'s token endpoint answered HTTP {status}.", status=status)
    if not isinstance(data, dict) or not data.get("access_token"):
        raise ProviderError(f"{name}'s token reply has no access token.", status=status)
    try:
        return provider.parse_token_reply(data, timezone.now())
    except ProviderError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError, AttributeError) as exc:
        raise ProviderError(f"{name}'s token reply cannot be read ({type(exc).__name__}).", status=status) from None


@sensitive_variables()
def check_token_reply(provider: Provider, reply: TokenReply) -> TokenReply:
    """``reply`` if everything in it can be stored and sent later; ``ProviderError`` otherwise.

    * access and refresh tokens: printable ASCII without spaces or control characters, at
      most :data:`MAX_TOKEN_LENGTH` characters. Anything else could not go into an
      ``Authorization`` header or a form body later, and a CR/LF in a header is an injection;
    * ``api_domain``: an ``https://`` origin (loopback ``http://`` allowed) that the provider
      accepts as an API domain (Bigin: one of its data centres');
    * ``token_type``: short printable ASCII.

    Free text (the scope) loses what cannot be stored: NUL, control characters, lone surrogates.
    """
    name = provider.display_name
    for what, token in (("access token", reply.access_token), ("refresh token", reply.refresh_token)):
        if token is None:
            continue
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise ProviderError(f"{name}'s {what} holds characters a token cannot have.")
        if len(token) > MAX_TOKEN_LENGTH:  # checked after the pattern: the message then stays short
            raise ProviderError(f"{name}'s {what} is longer than {MAX_TOKEN_LENGTH} characters.")
    if reply.api_domain:
        api_domain = reply.api_domain
        if len(api_domain) > _MAX_API_DOMAIN or not (is_safe_endpoint(api_domain) and is_origin(api_domain)):
            raise ProviderError(f"{name}'s token reply names an API domain that is not an HTTPS origin.")
        try:
            provider.get_api_base_url(api_domain)
        except UnsafeURL:
            raise ProviderError(f"{name}'s token reply names an API domain {name} does not use.") from None
    if reply.token_type and (len(reply.token_type) > _MAX_TOKEN_TYPE or not _TOKEN.fullmatch(reply.token_type)):
        raise ProviderError(f"{name}'s token reply has a token type that cannot be stored.")
    scope = clean_text(reply.scope)
    return reply if scope == reply.scope else dataclasses.replace(reply, scope=scope)


def _code(value: Any) -> str:
    """An ``error`` value fit for a message and a log line: short, one line, no control characters."""
    return printable(value, limit=80)
