"""A strict OpenID Connect provider on a real 127.0.0.1 socket, for the failure paths the sandbox cannot show.

It publishes what a real one does (``/.well-known/openid-configuration``, a key set, token,
revocation and userinfo endpoints), counts every request, and refuses what real servers refuse:
unknown clients, codes used twice or presented with another redirect URI or PKCE verifier,
reused rotated refresh tokens (the whole grant dies, RFC 9700 4.14.2), access tokens it did
not issue. Tests change what it publishes or signs through its attributes:

* ``document`` overrides fields of the discovery document (``{"issuer": "..."}``), and
  ``openid_configuration=False`` answers 404 there (RFC 8414's document only);
* ``discovery_delay`` slows the discovery document down;
* ``id_token_claims`` overrides claims of the next ID tokens, ``id_token_mode`` signs them
  wrongly (``"none"``: alg none, ``"bad-signature"``, ``"unknown-key"``, ``"hs256"``,
  ``"missing"``: no ID token at all);
* :meth:`rotate_keys` replaces the signing key (the old one leaves the key set), as a provider
  rotating its keys does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "acme-client"
CLIENT_SECRET = "acme-secret-value"


@dataclass
class StubRequest:
    method: str
    path: str
    headers: dict
    form: dict


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def public_jwk(self) -> dict:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}


def new_key(algorithm: str = "RS256") -> SigningKey:
    if algorithm.startswith("ES"):
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid="k-" + secrets.token_hex(4), algorithm=algorithm, private=private)


@dataclass
class Grant:
    sub: str
    refresh_token: str
    access_tokens: list = field(default_factory=list)
    used_refresh_tokens: set = field(default_factory=set)
    alive: bool = True


@dataclass
class StubCode:
    redirect_uri: str
    code_challenge: str | None
    nonce: str | None
    sub: str
    used: bool = False


@dataclass
class OIDCStub:
    algorithm: str = "RS256"
    sub: str = "user-42"
    email: str = "ann@example.com"
    expires_in: int = 3600
    openid_configuration: bool = True
    iss_parameter_supported: bool = True
    discovery_delay: float = 0.0
    document: dict = field(default_factory=dict)
    id_token_claims: dict = field(default_factory=dict)
    id_token_mode: str = ""
    requests: list = field(default_factory=list)
    codes: dict = field(default_factory=dict)
    grants: list = field(default_factory=list)
    revoked: list = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.key = new_key(self.algorithm)
        self.server: ThreadingHTTPServer | None = None

    # -- addresses ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/op"

    def discovery_document(self) -> dict:
        base = self.issuer
        document = {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "revocation_endpoint": f"{base}/revoke",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": self.iss_parameter_supported,
        }
        document.update(self.document)
        return document

    def settings_entry(self, **extra: Any) -> dict:
        return {"ISSUER": self.issuer, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, **extra}

    # -- test-facing -----------------------------------------------------------------------

    def issue_code(self, authorised: dict[str, str], *, sub: str | None = None) -> str:
        """A code as the consent page hands it out for the authorisation request ``authorised``."""
        assert authorised.get("client_id") == CLIENT_ID
        code = "code-" + secrets.token_hex(8)
        with self.lock:
            self.codes[code] = StubCode(
                redirect_uri=authorised["redirect_uri"],
                code_challenge=authorised.get("code_challenge"),
                nonce=authorised.get("nonce"),
                sub=sub or self.sub,
            )
        return code

    def rotate_keys(self) -> SigningKey:
        self.key = new_key(self.algorithm)
        return self.key

    def calls(self, path_suffix: str = "") -> list[StubRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    @property
    def live_refresh_tokens(self) -> set[str]:
        with self.lock:
            return {g.refresh_token for g in self.grants if g.alive}

    # -- behaviour ---------------------------------------------------------------------------

    def handle(self, request: StubRequest) -> tuple[int, dict | str]:
        with self.lock:
            self.requests.append(request)
        path = request.path
        if not path.startswith("/op/") and not path.startswith("/.well-known/"):
            return 404, {"error": "not_found"}
        if path == "/op/.well-known/openid-configuration":
            time.sleep(self.discovery_delay)
            if not self.openid_configuration:
                return 404, {"error": "not_found"}
            return 200, self.discovery_document()
        if path in ("/op/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/op"):
            document = {k: v for k, v in self.discovery_document().items() if k not in ("userinfo_endpoint",)}
            return 200, document
        if path == "/op/jwks":
            return 200, {"keys": [self.key.public_jwk()]}
        if path == "/op/token" and request.method == "POST":
            return self._token(request.form)
        if path == "/op/revoke" and request.method == "POST":
            return self._revoke(request.form)
        if path == "/op/userinfo":
            return self._userinfo(request.headers)
        return 404, {"error": "not_found"}

    def _token(self, form: dict) -> tuple[int, dict]:
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                code = self.codes.get(form.get("code", ""))
                if code is None or code.used or code.redirect_uri != form.get("redirect_uri"):
                    return 400, {"error": "invalid_grant"}
                if code.code_challenge and _challenge(form.get("code_verifier", "")) != code.code_challenge:
                    return 400, {"error": "invalid_grant"}
                code.used = True
                grant = Grant(sub=code.sub, refresh_token="rt-" + secrets.token_hex(8))
                self.grants.append(grant)
                return 200, self._tokens(grant, nonce=code.nonce, with_id_token=True)
            if form.get("grant_type") == "refresh_token":
                presented = form.get("refresh_token")
                grant = next((g for g in self.grants if presented in (g.refresh_token, *g.used_refresh_tokens)), None)
                if grant is None or not grant.alive:
                    return 400, {"error": "invalid_grant"}
                if presented != grant.refresh_token:
                    grant.alive = False  # reuse of a rotated refresh token
                    return 400, {"error": "invalid_grant"}
                grant.used_refresh_tokens.add(presented)
                grant.refresh_token = "rt-" + secrets.token_hex(8)
                return 200, self._tokens(grant, nonce=None, with_id_token=False)
        return 400, {"error": "unsupported_grant_type"}

    def _tokens(self, grant: Grant, *, nonce: str | None, with_id_token: bool) -> dict:
        access = "at-" + secrets.token_hex(12)
        grant.access_tokens.append(access)
        reply = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": grant.refresh_token,
            "scope": "openid offline_access",
        }
        if with_id_token and self.id_token_mode != "missing":
            reply["id_token"] = self.id_token(grant.sub, nonce)
        return reply

    def id_token(self, sub: str, nonce: str | None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": sub, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "email": self.email}
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.id_token_claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        mode = self.id_token_mode
        if mode == "none":
            return jwt.encode(claims, None, algorithm="none")
        if mode == "hs256":
            with warnings.catch_warnings():  # the client secret is short for HMAC: that is the point
                warnings.simplefilter("ignore")
                return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": self.key.kid})
        key = new_key(self.algorithm) if mode == "unknown-key" else self.key
        token = jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})
        if mode == "bad-signature":
            head, payload, signature = token.split(".")
            forged = dict(claims, sub="someone-else")
            payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
            token = f"{head}.{payload}.{signature}"
        return token

    def _revoke(self, form: dict) -> tuple[int, dict | str]:
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        token = form.get("token")
        with self.lock:
            self.revoked.append(token)
            for grant in self.grants:
                if token == grant.refresh_token or token in grant.access_tokens:
                    grant.alive = False
        return 200, ""  # RFC 7009 2.2: 200 whether or not the token was known

    def _userinfo(self, headers: dict) -> tuple[int, dict]:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        with self.lock:
            grant = next((g for g in self.grants if g.alive and token in g.access_tokens), None)
        if scheme != "Bearer" or grant is None:
            return 401, {"error": "invalid_token"}
        return 200, {"sub": grant.sub, "email": self.email}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OIDCStub:
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _handler(stub: OIDCStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            status, data = stub.handle(StubRequest(method, parts.path, dict(self.headers), form))
            body = (data if isinstance(data, str) else json.dumps(data)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *args) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
