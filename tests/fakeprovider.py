"""A strict OAuth 2.0 provider on real 127.0.0.1 sockets: it counts every call and punishes what real servers punish.

Three servers, as a real deployment has them, so that a request sent to the wrong one fails:

* ``url`` -- the home accounts server (Zoho's ``us`` data centre, and Biggerplate's
  ``/oauth/auth`` and ``/oauth/token``);
* ``eu_url`` -- a second Zoho data centre's accounts server. Each accounts server knows only
  the grants it issued, as Zoho's do: a refresh or revoke sent to another data centre fails;
* ``api_url`` -- the API domain: the only place that accepts access tokens, and nothing else.

What it enforces, from ``shared/PROVIDERS.md`` (the strictest documented behaviour):

* **client authentication** on every token request (Zoho: HTTP 200 ``invalid_client``);
* **codes** single use (a second use revokes every token issued from it, RFC 6749 4.1.2),
  bound to the client, the ``redirect_uri`` and the PKCE challenge they were issued for;
* **refresh-token rotation with reuse detection** (RFC 9700 4.14.2, oidc-provider,
  django-oauth-toolkit's ``REFRESH_TOKEN_REUSE_PROTECTION``) when ``rotate_refresh_tokens``:
  a used refresh token presented again revokes the whole grant, new tokens included;
* **Zoho's limits**: 10 access tokens per refresh token per 10 minutes (then the throttle
  reply, ``"error": "Access Denied"``), 15 live access tokens per refresh token (the 16th
  kills the oldest); refusals as Zoho sends them, HTTP 200 ``{"error": "invalid_code"}``;
* **revocation** (RFC 7009, Zoho's reply shape): revoking a refresh token kills the grant
  and every access token made from it;
* **no redirects followed**: with ``redirect_token_requests`` the token endpoint answers 307
  to the other accounts server, which records anything that arrives.

Tests script odd replies with :meth:`FakeProvider.queue_reply`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ZOHO_CLIENT = ("1000.BIGIN", "bigin-secret-value")
BIGGERPLATE_CLIENT = ("bp-client", "bp-secret-value")
#: clients registered at the standard (non-Zoho) token endpoint: Biggerplate's and the tests' own
STANDARD_CLIENTS = {BIGGERPLATE_CLIENT[0]: BIGGERPLATE_CLIENT[1], "acme-client": "acme-secret-value"}
#: ``issue_code(redirect_uri=ANY)``: the code is not bound to a redirect URI
ANY = object()
ZOHO_REFRESH_LIMIT = 10
ZOHO_WINDOW = 600.0
ZOHO_LIVE_ACCESS_LIMIT = 15


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict
    form: dict
    #: which server received it: "us", "eu" or "api"
    server: str = "us"


@dataclass
class CannedReply:
    status: int = 200
    body: str | bytes = "{}"
    content_type: str = "application/json"
    delay: float = 0.0
    #: the reply is for the next request whose path ends with this
    path_suffix: str = "token"
    headers: dict = field(default_factory=dict)


@dataclass
class Grant:
    """Everything issued from one authorisation (a code, or a refresh token a test planted)."""

    server: str
    #: None: planted by a test for any client that authenticates
    client_id: str | None
    rotating: bool
    refresh_token: str | None
    used_refresh_tokens: set = field(default_factory=set)
    access_tokens: list = field(default_factory=list)
    refresh_times: list = field(default_factory=list)
    alive: bool = True
    org_scope: bool = True


@dataclass
class Code:
    server: str
    #: None: any client that authenticates at the endpoint may exchange it
    client_id: str | None
    redirect_uri: object
    code_challenge: str | None
    issued: float
    used_by: Grant | None = None


@dataclass
class FakeProvider:
    """State of the fake servers; handlers read and write it under ``lock``."""

    delay: float = 0.0
    rotate_refresh_tokens: bool = False
    expires_in: int = 3600
    org_id: str = "org-1"
    org_name: str = "Acme Ltd"
    #: answer every token request with a redirect to the other accounts server
    redirect_token_requests: bool = False
    #: False: the API answers 401 to every token, live or not
    api_accepts_tokens: bool = True
    code_lifetime: float = 120.0
    codes: dict = field(default_factory=dict)
    grants: list = field(default_factory=list)
    revoked: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    canned: list = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    servers: dict = field(default_factory=dict)

    # -- addresses -------------------------------------------------------------------

    def _url(self, name: str) -> str:
        host, port = self.servers[name].server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The home accounts server (Zoho ``us``; Biggerplate's endpoints)."""
        return self._url("us")

    @property
    def eu_url(self) -> str:
        return self._url("eu")

    @property
    def api_url(self) -> str:
        return self._url("api")

    # -- test-facing helpers --------------------------------------------------------

    def issue_code(
        self,
        *,
        server: str = "us",
        client_id: str | None = None,
        redirect_uri: object = ANY,
        code_challenge: str | None = None,
    ) -> str:
        """A code as the consent page would hand it out, bound to what the authorise request said."""
        code = "1000.code." + secrets.token_hex(8)
        with self.lock:
            self.codes[code] = Code(
                server=server,
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                issued=time.monotonic(),
            )
        return code

    def issue_refresh_token(self, *, server: str = "us", client_id: str | None = None) -> str:
        """A refresh token of a new grant, as if an account had been linked before the test."""
        token = "1000.refresh." + secrets.token_hex(8)
        with self.lock:
            self.grants.append(Grant(server, client_id, self.rotate_refresh_tokens, refresh_token=token))
        return token

    def adopt(self, *, access_token: str | None = None, refresh_token: str | None = None, server: str = "us") -> Grant:
        """Make tokens a test wrote into the database live at the provider (one grant)."""
        grant = Grant(server, None, self.rotate_refresh_tokens, refresh_token=refresh_token)
        if access_token:
            grant.access_tokens.append(access_token)
        with self.lock:
            self.grants.append(grant)
        return grant

    def kill(self, token: str) -> None:
        """Revoke the grant holding ``token`` at the provider, as a user would on the provider's site."""
        with self.lock:
            for grant in self.grants:
                if token == grant.refresh_token or token in grant.access_tokens:
                    grant.alive = False

    @property
    def live_access_tokens(self) -> frozenset:
        with self.lock:
            return frozenset(t for g in self.grants if g.alive for t in g.access_tokens)

    @property
    def live_refresh_tokens(self) -> frozenset:
        with self.lock:
            return frozenset(g.refresh_token for g in self.grants if g.alive and g.refresh_token)

    def grant_of(self, token: str) -> Grant | None:
        with self.lock:
            return next(
                (
                    g
                    for g in self.grants
                    if token == g.refresh_token or token in g.access_tokens or token in g.used_refresh_tokens
                ),
                None,
            )

    def queue_reply(
        self,
        status: int = 200,
        body: object = "{}",
        content_type: str = "application/json",
        delay: float = 0.0,
        path_suffix: str = "token",
        headers: dict | None = None,
    ) -> None:
        """The next request whose path ends with ``path_suffix`` gets this reply."""
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        with self.lock:
            self.canned.append(CannedReply(status, body, content_type, delay, path_suffix, headers or {}))

    def calls(self, path_suffix: str = "", grant_type: str | None = None, server: str | None = None) -> list:
        with self.lock:
            found = [r for r in self.requests if r.path.endswith(path_suffix)]
        if grant_type:
            found = [r for r in found if r.form.get("grant_type") == grant_type]
        if server:
            found = [r for r in found if r.server == server]
        return found

    def refresh_calls(self) -> int:
        return len(self.calls(grant_type="refresh_token"))

    # -- the servers' behaviour -----------------------------------------------------

    def handle(self, server: str, method: str, path: str, query: str, headers: dict, form: dict) -> CannedReply:
        with self.lock:
            self.requests.append(Recorded(method, path, query, headers, form, server))
            canned = next((reply for reply in self.canned if path.endswith(reply.path_suffix)), None)
            if canned:
                self.canned.remove(canned)
        if canned:
            time.sleep(canned.delay)
            return canned
        if server == "api":
            return self._api(path, headers)
        if path.endswith("/revoke"):
            return self._revoke(server, form)
        if path in ("/oauth/v2/token", "/oauth/token"):
            if self.redirect_token_requests:
                other = self.eu_url if server == "us" else self.url
                return CannedReply(status=307, body="", headers={"Location": f"{other}{path}"})
            time.sleep(self.delay)
            return self._token(server, path.startswith("/oauth/v2/"), form)
        return _json({"error": "not_found"}, status=404)

    def _token(self, server: str, zoho: bool, form: dict) -> CannedReply:
        refused = _json({"error": "invalid_code"}) if zoho else _json({"error": "invalid_grant"}, status=400)
        presented = (form.get("client_id"), form.get("client_secret"))
        known = presented == ZOHO_CLIENT if zoho else STANDARD_CLIENTS.get(presented[0]) == presented[1]
        if not known:
            return _json({"error": "invalid_client"}) if zoho else _json({"error": "invalid_client"}, status=401)
        grant_type = form.get("grant_type")
        with self.lock:
            if grant_type == "authorization_code":
                return self._exchange(server, zoho, form, refused)
            if grant_type == "refresh_token":
                return self._refresh(server, zoho, form, refused)
        return _json({"error": "unsupported_grant_type"}, status=400)

    def _exchange(self, server: str, zoho: bool, form: dict, refused: CannedReply) -> CannedReply:
        code = self.codes.get(form.get("code"))
        if code is None or code.server != server:
            return refused
        if code.used_by is not None:
            code.used_by.alive = False  # a code used twice: every token it produced dies
            return refused
        if time.monotonic() - code.issued > self.code_lifetime:
            return refused
        client_id = form["client_id"]  # authenticated above
        if code.client_id is not None and code.client_id != client_id:
            return refused
        if code.redirect_uri is not ANY and form.get("redirect_uri") != code.redirect_uri:
            return refused
        if code.code_challenge is not None and _challenge(form.get("code_verifier", "")) != code.code_challenge:
            return refused
        if client_id == BIGGERPLATE_CLIENT[0] and form.get("response_type") != "token":
            return _json({"error": "invalid_request"}, status=400)  # Biggerplate's documented exchange
        refresh = "1000.refresh." + secrets.token_hex(8)
        grant = Grant(server, client_id, self.rotate_refresh_tokens, refresh_token=refresh)
        code.used_by = grant
        self.grants.append(grant)
        return _json(self._new_access(grant, server, with_refresh=True))

    def _refresh(self, server: str, zoho: bool, form: dict, refused: CannedReply) -> CannedReply:
        presented = form.get("refresh_token")
        grant = next(
            (g for g in self.grants if g.server == server and presented in (g.refresh_token, *g.used_refresh_tokens)),
            None,
        )
        if grant is None or not grant.alive:
            return refused
        if grant.client_id is not None and grant.client_id != form["client_id"]:
            return refused
        if presented != grant.refresh_token:
            # Reuse of a rotated refresh token: theft, as far as the server can tell.
            grant.alive = False
            return refused
        now = time.monotonic()
        grant.refresh_times = [t for t in grant.refresh_times if now - t < ZOHO_WINDOW]
        if zoho and len(grant.refresh_times) >= ZOHO_REFRESH_LIMIT:
            return _json(
                {
                    "error": "Access Denied",
                    "error_description": "You have made too many requests continuously. "
                    "Please try again after some time.",
                    "status": "failure",
                },
                status=400,
            )
        grant.refresh_times.append(now)
        if grant.rotating:
            grant.used_refresh_tokens.add(grant.refresh_token)
            grant.refresh_token = "1000.refresh." + secrets.token_hex(8)
            return _json(self._new_access(grant, server, with_refresh=True))
        return _json(self._new_access(grant, server, with_refresh=False))

    def _new_access(self, grant: Grant, server: str, *, with_refresh: bool) -> dict:
        access = "1000.access." + secrets.token_hex(12)
        grant.access_tokens.append(access)
        if len(grant.access_tokens) > ZOHO_LIVE_ACCESS_LIMIT:
            grant.access_tokens.pop(0)  # Zoho: the 16th kills the oldest
        reply = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
        reply["api_domain"] = self.api_url
        if with_refresh:
            reply["refresh_token"] = grant.refresh_token
        return reply

    def _revoke(self, server: str, form: dict) -> CannedReply:
        token = form.get("token")
        with self.lock:
            self.revoked.append(token)
            for grant in self.grants:
                if grant.server == server and token in (grant.refresh_token, *grant.access_tokens):
                    grant.alive = False  # Zoho: every access token made from it dies too
        # RFC 7009 2.2: an unknown token is answered like a known one.
        return _json({"status": "success"})

    def _api(self, path: str, headers: dict) -> CannedReply:
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.rpartition(" ")
        # Bigin takes only its own scheme; elsewhere Bearer, or the bare token (Biggerplate's
        # public client sends that; AUTH_HEADER_FORMAT="").
        wanted = ("Zoho-oauthtoken",) if path.startswith("/bigin/") else ("Bearer", "")
        with self.lock:
            grant = next((g for g in self.grants if g.alive and token in g.access_tokens), None)
        if scheme not in wanted or grant is None or not self.api_accepts_tokens:
            return _json({"code": "INVALID_TOKEN", "message": "invalid oauth token"}, status=401)
        if path == "/bigin/v2/org":
            if not grant.org_scope:
                return _json({"code": "OAUTH_SCOPE_MISMATCH", "message": "invalid oauth scope"}, status=401)
            return _json({"org": [{"id": self.org_id, "company_name": self.org_name}]})
        if path in ("/users/me", "/me"):
            return _json({"Id": self.org_id, "UserName": self.org_name})
        return _json({"ok": True, "path": path})

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeProvider:
        for name in ("us", "eu", "api"):
            server = _QuietServer(("127.0.0.1", 0), _handler(self, name))
            server.daemon_threads = True
            self.servers[name] = server
            # A short poll interval: stop() waits for it, and every test using the fixture stops one.
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def take_down(self, name: str) -> str:
        """Stop one server (``"us"``, ``"eu"``, ``"api"``): connections to it are refused. Returns its URL."""
        url = self._url(name)
        self.servers[name].shutdown()
        self.servers[name].server_close()
        return url

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()


def _handler(fake: FakeProvider, name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            reply = fake.handle(name, method, parts.path, parts.query, dict(self.headers), form)
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *args) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: expected, not news.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _json(data: dict, status: int = 200) -> CannedReply:
    return CannedReply(status=status, body=json.dumps(data))


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def bigoauth_settings_for(fake: FakeProvider, **top_level) -> dict:
    """A BIGOAUTH dict whose providers all point at ``fake``."""
    return {
        "PROVIDERS": {
            "bigin": {
                "CLIENT_ID": ZOHO_CLIENT[0],
                "CLIENT_SECRET": ZOHO_CLIENT[1],
                "DATA_CENTRE": "us",
                "ACCOUNTS_SERVERS": {"us": fake.url, "eu": fake.eu_url},
                "API_DOMAINS": {"us": fake.api_url, "eu": fake.api_url},
            },
            "biggerplate": {
                "CLIENT_ID": BIGGERPLATE_CLIENT[0],
                "CLIENT_SECRET": BIGGERPLATE_CLIENT[1],
                "AUTHORIZE_URL": f"{fake.url}/oauth/auth",
                "TOKEN_URL": f"{fake.url}/oauth/token",
                "API_BASE_URL": fake.api_url,
            },
        },
        "ENCRYPTION_KEYS": ["ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="],
        **top_level,
    }
