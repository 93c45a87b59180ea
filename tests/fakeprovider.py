"""A real OAuth 2.0 token server on 127.0.0.1 for tests: it counts, it can be slow, it can rotate.

Speaks both dialects the app meets: Zoho's (errors with HTTP 200, ``api_domain``,
``/oauth/v2/...`` paths, ``/bigin/v2/org``) and Biggerplate's (``/oauth/token``,
``/users/me``). Tests script odd replies with :meth:`FakeProvider.queue_reply`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict
    form: dict


@dataclass
class CannedReply:
    status: int = 200
    body: str | bytes = "{}"
    content_type: str = "application/json"
    delay: float = 0.0
    #: the reply is for the next request whose path ends with this
    path_suffix: str = "token"


@dataclass
class FakeProvider:
    """State of the fake server; the handler reads and writes it under ``lock``."""

    delay: float = 0.0
    rotate_refresh_tokens: bool = False
    expires_in: int = 3600
    org_id: str = "org-1"
    org_name: str = "Acme Ltd"
    codes: set = field(default_factory=set)
    live_refresh_tokens: set = field(default_factory=set)
    live_access_tokens: set = field(default_factory=set)
    revoked: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    canned: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    # -- test-facing helpers --------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def issue_code(self) -> str:
        code = "1000.code." + secrets.token_hex(8)
        with self.lock:
            self.codes.add(code)
        return code

    def issue_refresh_token(self) -> str:
        token = "1000.refresh." + secrets.token_hex(8)
        with self.lock:
            self.live_refresh_tokens.add(token)
        return token

    def queue_reply(
        self,
        status: int = 200,
        body: object = "{}",
        content_type: str = "application/json",
        delay: float = 0.0,
        path_suffix: str = "token",
    ) -> None:
        """The next token-endpoint request (or the next one to ``path_suffix``) gets this reply."""
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        with self.lock:
            self.canned.append(CannedReply(status, body, content_type, delay, path_suffix))

    def calls(self, path_suffix: str = "", grant_type: str | None = None) -> list[Recorded]:
        with self.lock:
            found = [r for r in self.requests if r.path.endswith(path_suffix)]
        if grant_type:
            found = [r for r in found if r.form.get("grant_type") == grant_type]
        return found

    def refresh_calls(self) -> int:
        return len(self.calls(grant_type="refresh_token"))

    # -- the server's behaviour -----------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict, form: dict) -> CannedReply:
        with self.lock:
            self.requests.append(Recorded(method, path, query, headers, form))
            canned = next((reply for reply in self.canned if path.endswith(reply.path_suffix)), None)
            if canned:
                self.canned.remove(canned)
        if canned:
            time.sleep(canned.delay)
            return canned
        if path.endswith("/revoke"):
            with self.lock:
                self.revoked.append(form.get("token"))
                self.live_refresh_tokens.discard(form.get("token"))
            return CannedReply(body=json.dumps({"status": "success"}))
        if path.endswith("/token"):
            time.sleep(self.delay)
            return self._token(form)
        if path in ("/bigin/v2/org", "/users/me", "/me"):
            return self._identity(path, headers)
        return CannedReply(status=404, body=json.dumps({"error": "not_found"}))

    def _token(self, form: dict) -> CannedReply:
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                if form.get("code") not in self.codes:
                    return _json({"error": "invalid_code"})  # Zoho style: HTTP 200
                self.codes.discard(form["code"])
                refresh = "1000.refresh." + secrets.token_hex(8)
                self.live_refresh_tokens.add(refresh)
                return _json(self._new_access(refresh_token=refresh))
            if grant == "refresh_token":
                presented = form.get("refresh_token")
                if presented not in self.live_refresh_tokens:
                    return _json({"error": "invalid_grant"}, status=400)
                if self.rotate_refresh_tokens:
                    self.live_refresh_tokens.discard(presented)
                    refresh = "1000.refresh." + secrets.token_hex(8)
                    self.live_refresh_tokens.add(refresh)
                    return _json(self._new_access(refresh_token=refresh))
                return _json(self._new_access())
        return _json({"error": "unsupported_grant_type"}, status=400)

    def _new_access(self, refresh_token: str | None = None) -> dict:
        access = "1000.access." + secrets.token_hex(12)
        self.live_access_tokens.add(access)
        reply = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in, "api_domain": self.url}
        if refresh_token:
            reply["refresh_token"] = refresh_token
        return reply

    def _identity(self, path: str, headers: dict) -> CannedReply:
        authorization = headers.get("Authorization", "")
        token = authorization.split(" ", 1)[-1]
        with self.lock:
            live = token in self.live_access_tokens
        if not live:
            return _json({"code": "INVALID_TOKEN"}, status=401)
        if path == "/bigin/v2/org":
            return _json({"org": [{"id": self.org_id, "company_name": self.org_name}]})
        return _json({"Id": self.org_id, "UserName": self.org_name})

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeProvider:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                reply = fake.handle(method, parts.path, parts.query, dict(self.headers), form)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll interval: stop() waits for it, and every test using the fixture stops one.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: expected, not news.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _json(data: dict, status: int = 200) -> CannedReply:
    return CannedReply(status=status, body=json.dumps(data))


def bigoauth_settings_for(fake: FakeProvider, **top_level) -> dict:
    """A BIGOAUTH dict whose providers all point at ``fake``."""
    return {
        "PROVIDERS": {
            "bigin": {
                "CLIENT_ID": "1000.BIGIN",
                "CLIENT_SECRET": "bigin-secret-value",
                "DATA_CENTRE": "us",
                "ACCOUNTS_SERVERS": {"us": fake.url, "eu": "https://accounts.zoho.eu"},
            },
            "biggerplate": {
                "CLIENT_ID": "bp-client",
                "CLIENT_SECRET": "bp-secret-value",
                "AUTHORIZE_URL": f"{fake.url}/oauth/auth",
                "TOKEN_URL": f"{fake.url}/oauth/token",
                "API_BASE_URL": fake.url,
            },
        },
        "ENCRYPTION_KEYS": ["ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="],
        **top_level,
    }
