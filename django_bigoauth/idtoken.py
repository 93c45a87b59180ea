"""OpenID Connect ID tokens, validated as OpenID Connect Core 1.0 section 3.1.3.7 says, with PyJWT.

An ID token from a code exchange is used (its ``sub`` becomes the account's external id) only
after every one of these holds:

* it is a JWS signed with an asymmetric algorithm the issuer advertises and the app accepts
  (never ``none``, never ``HS*``: ``generic.ID_TOKEN_ALGORITHMS``), by a key of the issuer's
  key set (``jwks_uri``); a key id the cached set lacks makes the set be fetched again, once;
* ``iss`` is the provider's issuer, exactly; ``aud`` holds the client id, and when it holds
  several audiences ``azp`` is the client id too (``azp``, when present, must always be);
* ``exp`` is in the future and ``iat`` not in it, each with :data:`CLOCK_SKEW` seconds of leeway;
* ``nonce`` is the one the app sent with this authorisation request (kept, as its SHA-256,
  with the state);
* ``sub`` is a string of 1 to 255 characters.

Anything else is a ``ProviderError`` naming what failed, never the token. ID tokens in refresh
replies are not used for anything, so they are not validated either.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt
from django.views.decorators.debug import sensitive_variables

from . import discovery
from .exceptions import ProviderError
from .providers import Provider
from .redaction import printable

__all__ = ["CLOCK_SKEW", "MAX_ID_TOKEN_LENGTH", "nonce_digest", "validate_id_token"]

#: Seconds of clock difference tolerated between this site and the issuer for ``exp`` and ``iat``.
CLOCK_SKEW = 60
#: Longest ID token read at all.
MAX_ID_TOKEN_LENGTH = 16384
#: OpenID Connect Core section 2: ``sub`` is at most 255 ASCII characters.
_MAX_SUB = 255


def nonce_digest(nonce: str) -> str:
    """What is kept of a nonce: its SHA-256 (the nonce itself is stored nowhere)."""
    return hashlib.sha256(nonce.encode()).hexdigest()


@sensitive_variables()
def validate_id_token(provider: Provider, id_token: str, *, expected_nonce_digest: str = "") -> dict[str, Any]:
    """The claims of ``id_token`` once it has passed every check of the module docstring.

    ``expected_nonce_digest``: :func:`nonce_digest` of the nonce sent in the authorisation
    request; the token must carry that nonce. Empty: none was sent, and none is required.
    """
    name = provider.display_name

    def refused(reason: str) -> ProviderError:
        return ProviderError(f"{name}'s ID token {reason}.")

    if not isinstance(id_token, str) or len(id_token) > MAX_ID_TOKEN_LENGTH or id_token.count(".") != 2:
        raise refused("is not a signed JSON Web Token")
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise refused("cannot be read") from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in provider.id_token_algorithms:
        raise refused(f"is signed with {printable(algorithm, limit=20)!r}, which is not accepted")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise refused("names its key with something that is not a string")
    keys = _keys(provider, algorithm, kid, refresh=False)
    if not keys and kid is not None:
        # A key id the cached set does not hold: the issuer may have rotated its keys.
        keys = _keys(provider, algorithm, kid, refresh=True)
    if not keys:
        raise refused("is signed with a key the issuer does not publish")
    claims = None
    for key in keys:
        try:
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=[algorithm],
                audience=provider.client_id,
                issuer=provider.issuer,
                leeway=CLOCK_SKEW,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # another key with no kid may be the one
        except jwt.ExpiredSignatureError:
            raise refused("has expired") from None
        except jwt.ImmatureSignatureError:
            raise refused("is dated in the future (iat or nbf)") from None
        except jwt.InvalidAudienceError:
            raise refused("is meant for another client (aud)") from None
        except jwt.InvalidIssuerError:
            raise refused("was issued by another issuer (iss)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise refused(f"lacks the {printable(exc.claim, limit=20)!r} claim") from None
        except jwt.PyJWTError as exc:
            raise refused(f"cannot be validated ({type(exc).__name__})") from None
    if claims is None:
        raise refused("has a signature that does not verify")
    _check_authorised_party(claims, provider.client_id, refused)
    _check_nonce(claims, expected_nonce_digest, refused)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= _MAX_SUB:
        raise refused("has no usable subject (sub)")
    return claims


def _keys(provider: Provider, algorithm: str, kid: str | None, *, refresh: bool) -> list[Any]:
    """The keys of the issuer's set that could have signed the token, as PyJWT key objects."""
    published = discovery.get_jwks(provider.get_jwks_uri(), name=provider.display_name, refresh=refresh)
    usable = []
    for jwk in published:
        if kid is not None and jwk.get("kid") != kid:
            continue
        if jwk.get("use") not in (None, "sig") or jwk.get("alg") not in (None, algorithm):
            continue
        try:
            usable.append(jwt.PyJWK(jwk, algorithm=algorithm).key)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # another key type, or not a key at all
    return usable


def _check_authorised_party(claims: dict[str, Any], client_id: str, refused: Any) -> None:
    audiences = claims.get("aud")
    several = isinstance(audiences, list) and len(audiences) > 1
    azp = claims.get("azp")
    if several and azp is None:
        raise refused("names several audiences but no authorised party (azp)")
    if azp is not None and azp != client_id:
        raise refused("was issued to another client (azp)")


@sensitive_variables()
def _check_nonce(claims: dict[str, Any], expected_digest: str, refused: Any) -> None:
    if not expected_digest:
        return
    nonce = claims.get("nonce")
    if not isinstance(nonce, str):
        raise refused("carries no nonce, though this sign-in sent one")
    if not hmac.compare_digest(nonce_digest(nonce), expected_digest):
        raise refused("carries another sign-in's nonce")
