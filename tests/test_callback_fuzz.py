"""Property: whatever query string reaches the callback, no 500 and no stored account.

With a valid pending state the outcome is also predicted exactly: an ``error`` parameter
means back to the accounts page, a missing code or an untrusted accounts server means 400
with nothing sent, and anything else is exchanged (the fake server refuses the code: 502).
"""

import pytest
from hypothesis import HealthCheck, given
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
