"""state.py: the OAuth state and PKCE verifier kept in the session."""

import base64
import hashlib
import json
import time
import uuid
from types import SimpleNamespace

import pytest

from django_bigoauth import state
from django_bigoauth.state import SESSION_KEY, StateError


def request_for(user_pk=1, session=None):
    user = SimpleNamespace(pk=user_pk, is_authenticated=user_pk is not None)
    return SimpleNamespace(session={} if session is None else session, user=user)


def begin(request, provider="bigin", **kwargs):
    kwargs.setdefault("redirect_uri", "https://site.example/bigoauth/bigin/callback/")
    kwargs.setdefault("use_pkce", False)
    return state.begin(request, provider, **kwargs)


class FrozenClock:
    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now


def test_state_is_long_random_and_new_every_time():
    request = request_for()
    states = {begin(request)[0] for _ in range(5)}
    assert len(states) == 5
    # 32 random bytes in URL-safe base64: 256 bits, well above the 128 the issue asks for.
    assert all(len(value) >= 43 for value in states)


def test_consume_returns_what_begin_remembered():
    request = request_for()
    value, challenge = begin(request, next_url="/after/", site_level=True)
    assert challenge == ""
    pending = state.consume(request, "bigin", value)
    assert pending.redirect_uri == "https://site.example/bigoauth/bigin/callback/"
    assert pending.next_url == "/after/"
    assert pending.site_level is True
    assert pending.code_verifier == ""


def test_pkce_challenge_is_s256_of_the_remembered_verifier():
    request = request_for()
    value, challenge = begin(request, use_pkce=True)
    verifier = state.consume(request, "bigin", value).code_verifier
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == expected


def test_a_state_works_once():
    request = request_for()
    value, _ = begin(request)
    state.consume(request, "bigin", value)
    with pytest.raises(StateError):
        state.consume(request, "bigin", value)


@pytest.mark.parametrize("value", [None, "", "forged-state-value"])
def test_missing_or_unknown_state_is_refused(value):
    request = request_for()
    begin(request)
    with pytest.raises(StateError):
        state.consume(request, "bigin", value)


def test_state_for_another_provider_is_refused_and_used_up():
    request = request_for()
    value, _ = begin(request, provider="biggerplate")
    with pytest.raises(StateError, match="another provider"):
        state.consume(request, "bigin", value)
    # Refused once, gone for good: it cannot be retried against the right provider either.
    with pytest.raises(StateError):
        state.consume(request, "biggerplate", value)


def test_state_of_another_user_is_refused():
    session = {}
    value, _ = begin(request_for(user_pk=1, session=session))
    with pytest.raises(StateError, match="another user"):
        state.consume(request_for(user_pk=2, session=session), "bigin", value)


def test_state_of_a_signed_in_user_is_refused_once_signed_out():
    session = {}
    value, _ = begin(request_for(user_pk=1, session=session))
    with pytest.raises(StateError):
        state.consume(request_for(user_pk=None, session=session), "bigin", value)


def test_state_expires_after_state_ttl(monkeypatch, settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "STATE_TTL": 60}
    clock = FrozenClock(time.time())
    monkeypatch.setattr(state, "time", clock)
    request = request_for()
    fresh, _ = begin(request)
    stale, _ = begin(request)
    clock.now += 59
    state.consume(request, "bigin", fresh)
    clock.now += 2
    with pytest.raises(StateError):
        state.consume(request, "bigin", stale)
    assert request.session[SESSION_KEY] == {}


def test_only_the_newest_requests_stay_pending(monkeypatch):
    clock = FrozenClock(time.time())
    monkeypatch.setattr(state, "time", clock)
    request = request_for()
    values = []
    for _ in range(state.MAX_PENDING + 2):
        clock.now += 1
        values.append(begin(request)[0])
    assert len(request.session[SESSION_KEY]) == state.MAX_PENDING
    for oldest in values[:2]:
        with pytest.raises(StateError):
            state.consume(request, "bigin", oldest)
    state.consume(request, "bigin", values[-1])


def test_session_content_is_json_even_for_uuid_user_keys():
    user_pk = uuid.uuid4()
    session = {}
    value, _ = begin(request_for(user_pk=user_pk, session=session), use_pkce=True)
    round_tripped = json.loads(json.dumps(session))
    assert state.consume(request_for(user_pk=user_pk, session=round_tripped), "bigin", value).user_id == str(user_pk)


def test_a_stray_callback_does_not_write_the_session():
    request = request_for()
    with pytest.raises(StateError):
        state.consume(request, "bigin", "made-up")
    assert SESSION_KEY not in request.session


def test_a_damaged_session_entry_is_refused_cleanly():
    request = request_for(session={SESSION_KEY: {"abc": {"created": time.time()}}})
    with pytest.raises(StateError):
        state.consume(request, "bigin", "abc")


def test_an_overlong_next_is_not_kept():
    request = request_for()
    value, _ = begin(request, next_url="/" + "a" * state.MAX_NEXT_URL_LENGTH)
    assert state.consume(request, "bigin", value).next_url == ""


def test_repr_of_a_pending_request_hides_the_verifier():
    request = request_for()
    value, _ = begin(request, use_pkce=True)
    pending = state.consume(request, "bigin", value)
    assert pending.code_verifier not in repr(pending)
    assert pending.code_verifier not in str(pending)
