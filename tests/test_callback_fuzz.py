"""Properties of the callback: never a 500, and never half an account.

Whatever query string reaches the callback, nothing is stored. With a valid pending state
the outcome is also predicted exactly: an ``error`` parameter means back to the accounts
page, a missing code or an untrusted accounts server means 400 with nothing sent, and
anything else is exchanged (the fake server refuses the code: 502).

And whatever the provider answers after a good exchange (any token reply, any identity
reply), the result is one consistent account holding the new token, or the database as it
was.
"""

import json

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.oauthflow import callback_url, nothing_stored, start

pytestmark = pytest.mark.django_db

FUZZ = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# Any text a URL can carry (lone surrogates cannot be encoded by any client).
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
known_names = st.sampled_from(["code", "error", "error_description", "accounts-server", "location", "next", "site"])
other_params = st.dictionaries(st.one_of(known_names, text).filter(lambda name: name != "state"), text, max_size=6)
providers = st.sampled_from(["bigin", "biggerplate"])


def exchanges(fake) -> int:
    return len(fake.calls("/token"))


@FUZZ
@given(provider=providers, query=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_raw_query_strings_without_a_pending_state(signed_in, fake_provider, provider, query):
    response = signed_in.get(f"{callback_url(provider)}?{query}")
    assert response.status_code == 400
    assert nothing_stored() and fake_provider.requests == []


@FUZZ
@given(provider=providers, state=text, params=other_params)
def test_arbitrary_state_values(signed_in, fake_provider, provider, state, params):
    start(signed_in, provider)  # a real pending request exists, but is not the one presented
    response = signed_in.get(callback_url(provider), {**params, "state": state})
    assert response.status_code == 400
    assert nothing_stored() and fake_provider.requests == []


@FUZZ
@given(
    provider=providers,
    params=other_params,
    server=st.one_of(st.none(), text, st.sampled_from(["trusted", "https://evil.example", "http://127.0.0.1:1"])),
)
def test_a_valid_state_with_arbitrary_other_parameters(signed_in, fake_provider, provider, params, server):
    authorised = start(signed_in, provider)
    params = dict(params)
    if server is not None:
        params["accounts-server"] = fake_provider.url if server == "trusted" else server
    before = exchanges(fake_provider)

    response = signed_in.get(callback_url(provider), {**params, "state": authorised["state"]})

    trusted_server = params.get("accounts-server") == fake_provider.url
    if "error" in params:
        expected, sent = 302, 0
    elif not params.get("code"):
        expected, sent = 400, 0
    elif provider == "bigin" and not trusted_server:
        expected, sent = 400, 0
    else:
        expected, sent = 502, 1  # exchanged; the fake server does not know the code
    assert response.status_code == expected
    assert exchanges(fake_provider) - before == sent
    assert nothing_stored()


# -- whatever the provider answers after a good exchange --------------------------------------------
# The state, code and accounts server are right; the token reply and the identity reply are
# anything, and ``next`` and ``location`` are odd. Whatever happens: no 500, and either one
# consistent account (holding the token just issued) or the database exactly as it was.

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
ACCOUNTS = "/bigoauth/"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
odd_text = st.one_of(text, st.sampled_from(["", "\x00", "Acme\x00 Ltd", "\ud800", "x" * 300]))
scalars = st.one_of(odd_text, st.integers(), st.floats(), st.none(), st.booleans(), json_values)


def mostly(usual, odd):
    """``usual`` three times in four, else ``odd``: enough replies get through to be stored."""
    return st.integers(0, 3).flatmap(lambda n: odd if n == 0 else usual)


access_tokens = mostly(st.from_regex(r"1000\.[a-z0-9]{4,20}", fullmatch=True), st.one_of(text, scalars))
expiry = mostly(
    st.integers(0, 10**6),
    st.one_of(st.none(), st.integers(), st.floats(), st.sampled_from(["3600", "soon", "1e18", "-1", 1e18, 10**30])),
)


@st.composite
def token_replies(draw, api_domains, *, needs_api_domain):
    kind = draw(mostly(st.just("dict"), st.sampled_from(["json", "text"])))
    if kind == "text":
        return draw(st.sampled_from([200, 400, 500])), draw(text), "text/plain"
    if kind == "json":
        return draw(st.sampled_from([200, 400])), json.dumps(draw(json_values)), "application/json"
    reply = {"access_token": draw(access_tokens)}
    optional = {
        "refresh_token": access_tokens,
        "token_type": mostly(st.just("Bearer"), scalars),
        "expires_in": expiry,
        "expires_in_sec": expiry,
        "expires": expiry,
        "scope": mostly(st.just("ZohoBigin.modules.ALL"), st.one_of(scalars, st.lists(odd_text, max_size=3))),
        "api_domain": mostly(st.just(api_domains[0]), st.sampled_from(api_domains)),
        "error": mostly(st.none(), odd_text),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()) or (name == "api_domain" and needs_api_domain):
            reply[name] = draw(strategy)
    return 200, json.dumps(reply), "application/json"


@st.composite
def identity_replies(draw, provider):
    status = draw(mostly(st.just(200), st.sampled_from([401, 403, 404, 429, 500, 503])))
    shape = draw(mostly(st.just("usual"), st.sampled_from(["json", "text"])))
    if shape == "text":
        return status, draw(text), "text/html"
    if shape == "json":
        return status, json.dumps(draw(json_values)), "application/json"
    bigin = provider == "bigin"
    who = {
        "id" if bigin else draw(st.sampled_from(["id", "Id"])): draw(
            mostly(st.sampled_from(["org-1", "org-2", 42]), scalars)
        ),
        "company_name" if bigin else "UserName": draw(mostly(text, scalars)),
    }
    body = {"org": [who]} if bigin else who
    return status, json.dumps(body), "application/json"


next_values = st.one_of(
    text,
    st.sampled_from(["/dashboard/?tab=crm", "https://evil.example/", "//evil.example", "/\\evil.example", "\x00/x"]),
)


def _snapshot() -> tuple:
    from django.db.models import TextField
    from django.db.models.functions import Cast

    from django_bigoauth.models import LinkedAccount, Token

    return (
        list(LinkedAccount.objects.order_by("pk").values()),
        list(
            Token.objects.order_by("pk").values_list(
                "account_id", Cast("access_token", TextField()), "generation", "token_type", "scope", "expires_at"
            )
        ),
    )


@pytest.fixture
def only_loopback(monkeypatch):
    """Whatever api_domain a reply names, nothing is sent off this machine (the test fails instead)."""
    import socket

    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(sock, address):
        assert not isinstance(address, tuple) or address[0] in LOOPBACK, f"connection to {address!r}"
        return connect(sock, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        assert host in LOOPBACK, f"name lookup of {host!r}"
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


@hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    provider=providers,
    data=st.data(),
    existing=st.sampled_from([None, "org-1", ""]),
    next_url=next_values,
    location=st.one_of(st.none(), text, st.just("\x00")),
)
def test_any_token_and_identity_reply_after_a_good_exchange(
    signed_in, alice, fake_provider, only_loopback, provider, data, existing, next_url, location
):
    from django.utils.encoding import iri_to_uri
    from django.utils.http import url_has_allowed_host_and_scheme

    from django_bigoauth import state
    from django_bigoauth.models import LinkedAccount, Token
    from django_bigoauth.redaction import clean_text

    LinkedAccount.objects.all().delete()
    with fake_provider.lock:
        fake_provider.canned.clear()
    if existing is not None:  # alice linked this provider before: a re-link, or a conflict
        account = LinkedAccount.objects.create(provider=provider, user=alice, external_id=existing, label="Old")
        Token.objects.create(account=account, access_token="1000.access.old", refresh_token="1000.refresh.old")
    # Never a real host: without an api_domain Bigin's identity request would go to Zoho.
    api_domains = [fake_provider.url, "http://api.evil.example", fake_provider.url + "\x00", "https://[::1", "x"]
    if provider == "biggerplate":
        api_domains.append("")
    token_status, token_body, token_type = data.draw(
        token_replies(api_domains, needs_api_domain=provider == "bigin"), label="token reply"
    )
    identity_status, identity_body, identity_type = data.draw(identity_replies(provider), label="identity reply")
    fake_provider.queue_reply(token_status, token_body, token_type)
    fake_provider.queue_reply(
        identity_status, identity_body, identity_type, path_suffix="/org" if provider == "bigin" else "/users/me"
    )
    before = _snapshot()

    authorised = start(signed_in, provider, next=next_url)
    params = {"state": authorised["state"], "code": fake_provider.issue_code()}
    if provider == "bigin":
        params["accounts-server"] = fake_provider.url
    if location is not None:
        params["location"] = location
    response = signed_in.get(callback_url(provider), params)

    assert response.status_code in (302, 502), response.status_code
    event(f"HTTP {response.status_code}")
    if response.status_code == 502:
        assert _snapshot() == before
        return
    # state.begin() keeps a next URL only when it is short and holds no control character (6c2d5ac).
    kept = len(next_url) <= state.MAX_NEXT_URL_LENGTH and clean_text(next_url) == next_url
    safe_next = kept and url_has_allowed_host_and_scheme(next_url, allowed_hosts={"testserver"})
    assert response["Location"] == (iri_to_uri(next_url) if safe_next else ACCOUNTS)
    reply = json.loads(token_body)
    # Exactly one account holds the token just issued, and it is alice's and active.
    linked = [token.account for token in Token.objects.all() if token.access_token == str(reply["access_token"])]
    assert len(linked) == 1
    account = linked[0]
    assert (account.user, account.provider, account.status) == (alice, provider, LinkedAccount.Status.ACTIVE)
    assert account.api_domain in (fake_provider.url, "")
    if existing is not None and existing != account.external_id:
        # Another account of alice's is untouched.
        assert LinkedAccount.objects.count() == 2
        assert Token.objects.get(account__external_id=existing).access_token == "1000.access.old"
    else:
        assert LinkedAccount.objects.count() == 1
    for row in LinkedAccount.objects.values_list(
        "external_id", "label", "data_centre", "accounts_server", "api_domain", "scopes"
    ):
        assert all("\x00" not in value for value in row)
    assert Token.objects.count() == LinkedAccount.objects.count()
