"""``account.asession()``: the sync session's rules, as an ``httpx.AsyncClient``.

The same cases as ``test_session.py`` and ``test_session_401.py``, through httpx, against the
strict fake provider on real 127.0.0.1 sockets: header scheme, API base, other origins and
plain HTTP refused before anything is sent, redirects that never carry the header elsewhere,
refresh before a request when stale, the 401 rules, and one SQL query per session.
"""

from __future__ import annotations

import sys

import httpx
import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async

from django_bigoauth import signals
from django_bigoauth.asession import AsyncAccountSession
from django_bigoauth.exceptions import BigOAuthError, ReauthorizationRequired, UnsafeURL
from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import overwrite_token

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_orm")]


def api_calls(fake):
    return [r for r in fake.requests if r.server == "api"]


@pytest.fixture
def bigin(fake_provider, make_account):
    """A Bigin account whose stored token the fake API accepts."""
    fake_provider.adopt(access_token="1000.access.initial")
    return make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), api_domain=fake_provider.api_url)


# -- header scheme, base URL, origins ----------------------------------------------------------------


async def test_bigin_sends_zoho_oauthtoken_to_the_stored_api_domain(fake_provider, bigin):
    async with bigin.asession() as api:
        assert isinstance(api, httpx.AsyncClient) and isinstance(api, AsyncAccountSession)
        response = await api.get("/bigin/v2/org")

    assert response.status_code == 200
    assert response.json()["org"][0]["company_name"] == "Acme Ltd"
    (call,) = api_calls(fake_provider)
    assert call.path == "/bigin/v2/org"
    assert call.headers["Authorization"] == "Zoho-oauthtoken 1000.access.initial"


async def test_biggerplate_sends_bearer_and_an_empty_format_the_bare_token(fake_provider, make_account, settings):
    fake_provider.adopt(access_token="1000.access.initial")
    account = await sync_to_async(make_account)("biggerplate")
    async with account.asession() as api:
        assert (await api.get("users/me")).status_code == 200
    config = bigoauth_settings_for(fake_provider)
    config["PROVIDERS"]["biggerplate"]["AUTH_HEADER_FORMAT"] = ""
    settings.BIGOAUTH = config
    async with account.asession() as api:
        assert (await api.get("/users/me")).status_code == 200

    first, second = api_calls(fake_provider)
    assert first.headers["Authorization"] == "Bearer 1000.access.initial"
    assert second.headers["Authorization"] == "1000.access.initial"


async def test_relative_paths_keep_a_path_prefix_of_the_api_base(make_account, settings):
    settings.BIGOAUTH = {
        "PROVIDERS": {
            "biggerplate": {"CLIENT_ID": "x", "CLIENT_SECRET": "y", "API_BASE_URL": "https://api.example.com/v2/"}
        }
    }
    account = await sync_to_async(make_account)("biggerplate")
    async with account.asession() as api:
        assert api.build_request("GET", "/users/me").url == "https://api.example.com/v2/users/me"
        assert api.build_request("GET", "users/me").url == "https://api.example.com/v2/users/me"
        assert api.build_request("GET", "https://api.example.com/v1/x").url == "https://api.example.com/v1/x"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:1/steal",  # loopback, so only the origin check stops it
        "https://evil.example/x",
        "//evil.example/x",
        "{api}/bigin/v2/org",  # the API's port on another name of this machine
    ],
)
async def test_a_token_is_never_sent_to_another_origin(fake_provider, bigin, url):
    url = url.format(api=fake_provider.api_url.replace("127.0.0.1", "localhost"))
    async with bigin.asession() as api:
        with pytest.raises(UnsafeURL, match="Refusing to send account"):
            await api.get(url)
        with pytest.raises(UnsafeURL):
            await api.send(httpx.Request("GET", url))  # built by hand, past build_request
        async with api.stream("GET", f"{fake_provider.api_url}/bigin/v2/org") as response:
            assert response.status_code == 200  # the account's own origin, absolute, is fine
    assert [call.path for call in fake_provider.requests] == ["/bigin/v2/org"]


async def test_plain_http_off_loopback_is_refused_before_anything_is_sent(fake_provider, make_account, settings):
    bigin = await sync_to_async(make_account)("bigin", api_domain="http://api.example.com")
    with pytest.raises(UnsafeURL, match="not an API domain of Bigin"):
        bigin.asession()
    settings.BIGOAUTH["PROVIDERS"]["biggerplate"]["API_BASE_URL"] = "http://api.example.com"
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    maps = await sync_to_async(make_account)("biggerplate", external_id="bp")
    with pytest.raises(UnsafeURL, match="not HTTPS"):
        maps.asession()
    assert fake_provider.requests == []


async def test_a_redirect_to_another_origin_carries_no_header_and_its_401_costs_no_refresh(fake_provider, bigin):
    fake_provider.queue_reply(
        302, "", "text/plain", path_suffix="/bigin/v2/moved", headers={"Location": f"{fake_provider.eu_url}/elsewhere"}
    )
    fake_provider.queue_reply(401, {"code": "INVALID_TOKEN"}, path_suffix="/elsewhere")
    async with bigin.asession() as api:
        response = await api.get("/bigin/v2/moved")

    assert response.status_code == 401 and str(response.url).endswith("/elsewhere")
    (moved,) = fake_provider.calls("/bigin/v2/moved")
    (elsewhere,) = fake_provider.calls("/elsewhere")
    assert moved.headers["Authorization"] == "Zoho-oauthtoken 1000.access.initial"
    assert "Authorization" not in elsewhere.headers
    assert fake_provider.refresh_calls() == 0


async def test_a_redirect_on_the_same_origin_keeps_the_header(fake_provider, bigin):
    fake_provider.queue_reply(302, "", "text/plain", path_suffix="/bigin/v2/old", headers={"Location": "/bigin/v2/org"})
    async with bigin.asession() as api:
        assert (await api.get("/bigin/v2/old")).status_code == 200
    assert api_calls(fake_provider)[-1].headers["Authorization"] == "Zoho-oauthtoken 1000.access.initial"


async def test_the_callers_headers_and_http_timeout_default(fake_provider, bigin, settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "HTTP_TIMEOUT": 7}
    async with bigin.asession() as api:
        assert api.timeout == httpx.Timeout(7)
        await api.get("/bigin/v2/org", headers={"X-Trace": "abc"})
    async with bigin.asession(timeout=2.5) as api:
        assert api.timeout == httpx.Timeout(2.5)
    assert api_calls(fake_provider)[0].headers["X-Trace"] == "abc"
    with pytest.raises(TypeError, match="auth"):
        bigin.asession(auth=("user", "pw"))


async def test_a_stored_token_no_header_can_carry_fails_before_sending_and_quotes_nothing(fake_provider, make_account):
    account = await sync_to_async(make_account)("bigin", api_domain=fake_provider.api_url)
    await sync_to_async(overwrite_token)(account, access_token="1000.access.secret-part\r\nX-Evil: 1")
    async with account.asession() as api:
        with pytest.raises(BigOAuthError) as excinfo:
            await api.get("/bigin/v2/org")
    assert "secret-part" not in str(excinfo.value) and "nothing was sent" in str(excinfo.value)
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    assert fake_provider.requests == []


@pytest.mark.parametrize(
    ("path", "headers", "kind"),
    [("/bigin/v2/a\x00b", {}, "InvalidURL"), ("/bigin/v2/org", {"X-Note": "\u20ac"}, "UnicodeEncodeError")],
)
async def test_a_request_httpx_cannot_build_is_a_bigoauth_error(fake_provider, bigin, path, headers, kind):
    async with bigin.asession() as api:
        with pytest.raises(BigOAuthError, match=f"cannot be made \\({kind}\\); nothing was sent") as excinfo:
            await api.get(path, headers=headers)
    assert excinfo.value.__context__ is None
    assert fake_provider.requests == []


async def test_repr_and_an_error_report_of_a_failed_call_show_no_token(fake_provider, make_account):
    from tests.test_no_secrets import assert_no_secrets, error_report

    down = fake_provider.take_down("api")
    account = await sync_to_async(make_account)("bigin", access_token="1000.access.apisecret", api_domain=down)
    async with account.asession(timeout=0.5) as api:
        with pytest.raises(httpx.ConnectError):
            try:
                await api.get("/bigin/v2/org")
            except httpx.ConnectError:
                report = error_report(sys.exc_info())
                raise
        assert "apisecret" not in repr(api) and "apisecret" not in repr(api.core)
    assert_no_secrets(report, ["1000.access.apisecret"])


# -- refresh before, and the 401 rules --------------------------------------------------------------


async def test_a_stale_token_is_refreshed_before_the_request(fake_provider, make_account):
    account = await sync_to_async(make_account)(
        "bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token(), api_domain=fake_provider.api_url
    )
    async with account.asession() as api:
        assert (await api.get("/bigin/v2/org")).status_code == 200

    assert [r.path for r in fake_provider.requests] == ["/oauth/v2/token", "/bigin/v2/org"]
    new_token = (await Token.objects.aget(account=account)).access_token
    assert fake_provider.requests[1].headers["Authorization"] == f"Zoho-oauthtoken {new_token}"


async def test_a_401_forces_one_refresh_and_one_retry_with_the_body(fake_provider, make_account):
    account = await sync_to_async(make_account)(
        "bigin",
        access_token="1000.access.dead",
        refresh_token=fake_provider.issue_refresh_token(),
        api_domain=fake_provider.api_url,
    )
    async with account.asession() as api:
        response = await api.post("/bigin/v2/Contacts", json={"data": [{"Last_Name": "Plan"}]})

    assert response.status_code == 200
    assert fake_provider.refresh_calls() == 1
    first, retry = api_calls(fake_provider)
    assert first.headers["Authorization"] == "Zoho-oauthtoken 1000.access.dead"
    new_token = (await Token.objects.aget(account=account)).access_token
    assert retry.headers["Authorization"] == f"Zoho-oauthtoken {new_token}"
    assert first.headers["Content-Length"] == retry.headers["Content-Length"] != "0"


async def test_calls_answered_401_cost_at_most_one_refresh(fake_provider, bigin):
    fake_provider.api_accepts_tokens = False
    statuses = []
    async with bigin.asession() as api:
        statuses += [(await api.get("/bigin/v2/org")).status_code for _ in range(5)]
    for _ in range(3):
        async with bigin.asession() as api:  # new sessions too
            statuses.append((await api.get("/bigin/v2/org")).status_code)
    assert statuses == [401] * 8
    assert fake_provider.refresh_calls() == 1


async def test_a_401_after_the_interval_refreshes_again(fake_provider, bigin, settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "REFRESH_ON_401_INTERVAL": 0}
    fake_provider.api_accepts_tokens = False
    async with bigin.asession() as api:
        await api.get("/bigin/v2/org")
        await api.get("/bigin/v2/org")
    assert fake_provider.refresh_calls() == 2


async def test_a_scope_mismatch_is_returned_without_a_refresh(fake_provider, bigin):
    fake_provider.grant_of("1000.access.initial").org_scope = False
    async with bigin.asession() as api:
        response = await api.get("/bigin/v2/org")
    assert response.status_code == 401 and response.json()["code"] == "OAUTH_SCOPE_MISMATCH"
    assert fake_provider.refresh_calls() == 0
    assert len(api_calls(fake_provider)) == 1


async def test_insufficient_scope_in_www_authenticate_is_returned_without_a_refresh(fake_provider, make_account):
    challenge = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}  # RFC 6750 section 3.1
    fake_provider.queue_reply(401, "", "text/plain", path_suffix="/users/me", headers=challenge)
    account = await sync_to_async(make_account)("biggerplate", refresh_token=fake_provider.issue_refresh_token())
    async with account.asession() as api:
        assert (await api.get("/users/me")).status_code == 401
    assert fake_provider.refresh_calls() == 0


async def test_a_newer_token_stored_meanwhile_is_retried_without_a_refresh(fake_provider, bigin):
    async with bigin.asession() as api:
        assert (await api.get("/bigin/v2/org")).status_code == 200  # the session keeps this token
        fake_provider.kill("1000.access.initial")
        fake_provider.adopt(access_token="1000.access.newer")
        await sync_to_async(overwrite_token)(bigin, access_token="1000.access.newer", generation=5)
        assert (await api.get("/bigin/v2/org")).status_code == 200
    assert fake_provider.refresh_calls() == 0
    assert api_calls(fake_provider)[-1].headers["Authorization"] == "Zoho-oauthtoken 1000.access.newer"


async def test_a_401_with_a_dead_refresh_token_raises_reauthorization_required_once(fake_provider, make_account):
    seen = []
    signals.reauthorization_required.connect(
        lambda **kw: seen.append(kw["account"].pk), weak=False, dispatch_uid="t-async-401"
    )
    try:
        account = await sync_to_async(make_account)(
            "bigin",
            access_token="1000.access.dead",
            refresh_token="1000.refresh.dead",
            api_domain=fake_provider.api_url,
        )
        async with account.asession() as api:
            with pytest.raises(ReauthorizationRequired):
                await api.get("/bigin/v2/org")
    finally:
        signals.reauthorization_required.disconnect(dispatch_uid="t-async-401")
    assert seen == [account.pk]
    assert len(api_calls(fake_provider)) == 1
    assert (await LinkedAccount.objects.aget(pk=account.pk)).status == LinkedAccount.Status.NEEDS_REAUTH


# -- the token is read once --------------------------------------------------------------------------


async def test_a_session_reads_the_token_once(fake_provider, bigin, all_queries):
    await LinkedAccount.objects.acount()  # the async ORM's thread connects outside the count
    all_queries.clear()
    async with bigin.asession() as api:
        for _ in range(5):
            assert (await api.get("/bigin/v2/org")).status_code == 200
    assert len(all_queries) == 1
    assert len(api_calls(fake_provider)) == 5


async def test_concurrent_requests_of_one_session_on_a_stale_token_cost_one_refresh(fake_provider, make_account):
    import asyncio

    fake_provider.delay = 0.1
    account = await sync_to_async(make_account)(
        "bigin", expires_in=-10, refresh_token=fake_provider.issue_refresh_token(), api_domain=fake_provider.api_url
    )
    async with account.asession() as api:
        responses = await asyncio.gather(*(api.get("/bigin/v2/org") for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert fake_provider.refresh_calls() == 1


async def test_requests_sent_side_by_side_read_the_token_once(fake_provider, bigin, all_queries):
    import asyncio

    await LinkedAccount.objects.acount()  # the async ORM's thread connects outside the count
    all_queries.clear()
    async with bigin.asession() as api:
        responses = await asyncio.gather(*(api.get("/bigin/v2/org") for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert len(all_queries) == 1


# -- httpx's pool is entered no faster than it has connections ---------------------------------------


class CountingAPI:
    """An API on a 127.0.0.1 socket, served by the test's own loop: it counts requests in flight at once.

    It answers ``/slow`` after a second and anything else after ``delay``, keeping connections open.
    """

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.in_flight = 0
        self.most_at_once = 0
        self.served = 0

    async def serve(self, reader, writer) -> None:
        import asyncio

        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.in_flight += 1
                self.most_at_once = max(self.most_at_once, self.in_flight)
                await asyncio.sleep(1.0 if head.startswith(b"GET /slow ") else self.delay)
                self.in_flight -= 1
                self.served += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest_asyncio.fixture
async def counting_api(fake_provider, make_account, settings):
    """(the API, a Biggerplate account whose API base is that API); the server closes afterwards."""
    import asyncio

    api = CountingAPI()
    server = await asyncio.start_server(api.serve, "127.0.0.1", 0)
    config = bigoauth_settings_for(fake_provider)
    config["PROVIDERS"]["biggerplate"]["API_BASE_URL"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    settings.BIGOAUTH = config
    yield api, await sync_to_async(make_account)("biggerplate")
    server.close()


@pytest.fixture
def requests_in_httpx_pool(monkeypatch) -> list[int]:
    """How many requests httpcore's pool held each time it assigned them to connections."""
    import httpcore

    sizes: list[int] = []
    assign = httpcore.AsyncConnectionPool._assign_requests_to_connections

    def counted(pool):
        sizes.append(len(pool._requests))
        return assign(pool)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "_assign_requests_to_connections", counted)
    return sizes


async def test_requests_beyond_max_connections_wait_outside_httpx_and_all_succeed(counting_api, requests_in_httpx_pool):
    """httpcore's pool scans every queued request against every connection (encode/httpx#3215): none queue there."""
    import asyncio

    api, account = counting_api
    async with account.asession(limits=httpx.Limits(max_connections=3)) as client:
        responses = await asyncio.gather(*(client.get("/items") for _ in range(12)))
    assert [r.status_code for r in responses] == [200] * 12
    assert api.served == 12
    assert api.most_at_once == 3
    assert max(requests_in_httpx_pool) == 3


async def test_no_bound_when_the_limits_set_none(counting_api):
    import asyncio

    api, account = counting_api
    async with account.asession(limits=httpx.Limits(max_connections=None)) as client:
        responses = await asyncio.gather(*(client.get("/items") for _ in range(12)))
    assert [r.status_code for r in responses] == [200] * 12
    assert api.most_at_once == 12


async def test_a_streamed_response_keeps_its_place_until_it_is_closed(counting_api, requests_in_httpx_pool):
    import asyncio

    api, account = counting_api
    async with account.asession(limits=httpx.Limits(max_connections=1)) as client:
        async with client.stream("GET", "/first") as first:
            second = asyncio.ensure_future(client.get("/second"))
            await asyncio.sleep(0.3)
            assert first.status_code == 200 and not second.done()
            assert api.served == 1
        assert (await asyncio.wait_for(second, 5)).status_code == 200
        await first.aclose()  # closing twice gives the place back once (httpx closes a body once)...
        responses = await asyncio.gather(*(client.get("/more") for _ in range(3)))
    assert [r.status_code for r in responses] == [200] * 3
    assert api.most_at_once == 1
    # ...or two of these would have waited inside httpx's pool, for its one connection.
    assert max(requests_in_httpx_pool) == 1


async def test_a_failed_request_gives_its_place_back(counting_api):
    import asyncio

    _api, account = counting_api
    async with account.asession(limits=httpx.Limits(max_connections=1), timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
        with pytest.raises(UnsafeURL):
            await client.get("https://elsewhere.example/items")
        assert (await asyncio.wait_for(client.get("/items"), 5)).status_code == 200
