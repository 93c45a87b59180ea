"""state.py: one database row per authorisation request, bound to the browser, consumed once."""

import base64
import hashlib
import json
import sys
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db.models import QuerySet

from django_bigoauth import crypto, state
from django_bigoauth.models import PendingAuthorisation
from django_bigoauth.state import LEGACY_SESSION_KEY, MAX_PENDING, SESSION_KEY, StateError, TooManyPending
from tests.test_no_secrets import assert_no_secrets, error_report

pytestmark = pytest.mark.django_db


def request_for(user_pk=1, session=None):
    user = SimpleNamespace(pk=user_pk, is_authenticated=user_pk is not None)
    return SimpleNamespace(session={} if session is None else session, user=user)


def begin(request, provider="bigin", **kwargs):
    kwargs.setdefault("redirect_uri", "https://site.example/bigoauth/bigin/callback/")
    kwargs.setdefault("use_pkce", False)
    return state.begin(request, provider, **kwargs)


def sha256(value):
    return hashlib.sha256(value.encode()).hexdigest()


def age(seconds, **lookup):
    """Make pending rows ``seconds`` older than they are."""
    for row in PendingAuthorisation.objects.filter(**lookup):
        row.created_at -= timedelta(seconds=seconds)
        row.save(update_fields=["created_at"])


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
    assert pending.user_pk == "1"
    assert not PendingAuthorisation.objects.exists()


def test_pkce_challenge_is_s256_of_the_remembered_verifier():
    request = request_for()
    value, challenge = begin(request, use_pkce=True)
    verifier = state.consume(request, "bigin", value).code_verifier
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == expected


def test_the_row_holds_the_states_hash_and_the_verifier_encrypted_and_the_session_only_a_binding():
    request = request_for()
    value, challenge = begin(request, use_pkce=True, next_url="/after/")
    row = PendingAuthorisation.objects.get()
    binding = request.session[SESSION_KEY]
    assert row.state_hash == sha256(value) and row.browser_hash == sha256(binding)
    assert (row.provider, row.user_pk, row.next_url, row.nonce, row.started_by_post) == (
        "bigin",
        "1",
        "/after/",
        "",
        True,
    )
    verifier = crypto.decrypt(row.encrypted_code_verifier)
    assert state.code_challenge(verifier) == challenge
    stored = json.dumps([str(v) for v in PendingAuthorisation.objects.values().get().values()])
    assert value not in stored and verifier not in stored and binding not in stored
    # The session: one random value, which is neither the state nor the verifier.
    assert list(request.session) == [SESSION_KEY]
    assert len(binding) >= 43 and binding not in (value, verifier)


def test_one_binding_per_browser_for_every_request():
    request = request_for()
    begin(request)
    binding = request.session[SESSION_KEY]
    begin(request, provider="biggerplate")
    assert request.session[SESSION_KEY] == binding
    assert set(PendingAuthorisation.objects.values_list("browser_hash", flat=True)) == {sha256(binding)}


def test_a_state_works_once():
    request = request_for()
    value, _ = begin(request)
    state.consume(request, "bigin", value)
    with pytest.raises(StateError, match="already used"):
        state.consume(request, "bigin", value)


@pytest.mark.parametrize("value", [None, "", "forged-state-value"])
def test_missing_or_unknown_state_is_refused(value):
    request = request_for()
    begin(request)
    with pytest.raises(StateError):
        state.consume(request, "bigin", value)
    assert PendingAuthorisation.objects.count() == 1  # the real one is untouched


def test_only_the_request_whose_delete_removed_the_row_gets_it(monkeypatch):
    # The row is read, then another request (the same callback in a second tab) deletes it
    # first: this one's DELETE removes nothing, so it is refused. (Threads: test_views_callback.)
    request = request_for()
    value, _ = begin(request)
    real_first = QuerySet.first

    def first_then_another_tab_wins(queryset):
        row = real_first(queryset)
        if queryset.model is PendingAuthorisation and row is not None:
            PendingAuthorisation.objects.filter(pk=row.pk).delete()
        return row

    monkeypatch.setattr(QuerySet, "first", first_then_another_tab_wins)
    with pytest.raises(StateError, match="already used"):
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


def test_state_of_another_browser_is_unknown_here_and_left_to_its_own_browser():
    mine = request_for()
    value, _ = begin(mine)
    other_browser = request_for()  # the same user, another session
    begin(other_browser)
    with pytest.raises(StateError, match="unknown"):
        state.consume(other_browser, "bigin", value)
    assert state.consume(mine, "bigin", value).provider == "bigin"


def test_a_session_without_a_binding_is_refused_and_not_written():
    value, _ = begin(request_for())
    stray = request_for()
    with pytest.raises(StateError):
        state.consume(stray, "bigin", value)
    assert stray.session == {}  # a stray callback creates no session
    assert PendingAuthorisation.objects.count() == 1


def test_state_expires_after_state_ttl(settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "STATE_TTL": 60}
    request = request_for()
    fresh, _ = begin(request)
    stale, _ = begin(request)
    age(59)
    state.consume(request, "bigin", fresh)
    age(2)
    with pytest.raises(StateError, match="expired"):
        state.consume(request, "bigin", stale)
    assert not PendingAuthorisation.objects.exists()  # refused and gone


def test_expired_rows_of_every_browser_are_deleted_by_the_next_begin(settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "STATE_TTL": 60}
    begin(request_for(user_pk=7))
    begin(request_for(user_pk=8))
    age(61)
    kept, _ = begin(request_for(user_pk=8))
    kept_too, _ = begin(request_for(user_pk=9))
    assert set(PendingAuthorisation.objects.values_list("state_hash", flat=True)) == {sha256(kept), sha256(kept_too)}


# -- at most MAX_PENDING per browser, and a GET never evicts a POST -------------------------------------


def fill(request, kinds):
    """Start one request per item of ``kinds`` (True: by POST), one second apart, oldest first."""
    values = [begin(request, started_by_post=by_post)[0] for by_post in kinds]
    for seconds, value in enumerate(reversed(values)):
        age(seconds, state_hash=sha256(value))
    return values


def pending_states():
    return set(PendingAuthorisation.objects.values_list("state_hash", flat=True))


def test_only_the_newest_requests_stay_pending():
    request = request_for()
    values = fill(request, [True] * MAX_PENDING)
    newest = begin(request)[0]
    assert PendingAuthorisation.objects.count() == MAX_PENDING
    with pytest.raises(StateError):
        state.consume(request, "bigin", values[0])  # the oldest went
    for value in (*values[1:], newest):
        state.consume(request, "bigin", value)


def test_the_cap_is_per_browser():
    mine = request_for()
    values = fill(mine, [True] * MAX_PENDING)
    fill(request_for(), [False] * MAX_PENDING)  # another browser's requests take none of mine
    assert PendingAuthorisation.objects.count() == 2 * MAX_PENDING
    for value in values:
        state.consume(mine, "bigin", value)


def test_a_get_at_the_cap_never_evicts_a_post_started_request():
    request = request_for()
    values = fill(request, [True] + [False] * (MAX_PENDING - 1))
    before = pending_states()
    with pytest.raises(TooManyPending):
        begin(request, started_by_post=False)
    assert pending_states() == before  # nothing evicted, nothing stored
    state.consume(request, "bigin", values[0])


def test_a_get_at_the_cap_evicts_the_oldest_when_a_get_started_it():
    request = request_for()
    values = fill(request, [False] + [True] * (MAX_PENDING - 1))
    newest = begin(request, started_by_post=False)[0]
    assert pending_states() == {sha256(v) for v in (*values[1:], newest)}
    assert PendingAuthorisation.objects.get(state_hash=sha256(newest)).started_by_post is False


def test_a_get_below_the_cap_evicts_nothing():
    request = request_for()
    values = fill(request, [True] * (MAX_PENDING - 1))
    newest = begin(request, started_by_post=False)[0]
    assert pending_states() == {sha256(v) for v in (*values, newest)}


@pytest.mark.parametrize("oldest_by_post", [True, False])
def test_a_post_at_the_cap_evicts_the_oldest_whoever_started_it(oldest_by_post):
    request = request_for()
    values = fill(request, [oldest_by_post] + [False] * (MAX_PENDING - 1))
    newest = begin(request, started_by_post=True)[0]
    assert pending_states() == {sha256(v) for v in (*values[1:], newest)}


def test_rows_beyond_the_cap_are_all_evicted_down_to_it():
    # Two browsers' worth of requests under one binding (a race between tabs could leave more).
    request = request_for()
    fill(request, [True] * MAX_PENDING)
    binding_hash = sha256(request.session[SESSION_KEY])
    extra = [begin(request_for())[0] for _ in range(3)]
    PendingAuthorisation.objects.filter(state_hash__in=[sha256(v) for v in extra]).update(browser_hash=binding_hash)
    age(100, state_hash__in=[sha256(v) for v in extra])  # the oldest of all
    newest = begin(request)[0]
    assert PendingAuthorisation.objects.filter(browser_hash=binding_hash).count() == MAX_PENDING
    assert not pending_states() & {sha256(v) for v in extra}
    assert sha256(newest) in pending_states()


# -- what is kept, and what shows ----------------------------------------------------------------------


def test_uuid_user_keys_round_trip():
    user_pk = uuid.uuid4()
    session = {}
    value, _ = begin(request_for(user_pk=user_pk, session=session), use_pkce=True)
    assert state.consume(request_for(user_pk=user_pk, session=session), "bigin", value).user_pk == str(user_pk)


def test_the_session_content_is_json():
    session = {}
    value, _ = begin(request_for(session=session), use_pkce=True)
    round_tripped = json.loads(json.dumps(session))
    assert state.consume(request_for(session=round_tripped), "bigin", value).provider == "bigin"


def test_a_legacy_session_store_is_dropped_when_a_binding_is_made():
    # What an earlier version kept in the session, verifiers included: gone at the first begin().
    session = {LEGACY_SESSION_KEY: {"abc": {"code_verifier": "v" * 64, "created": 0}}}
    begin(request_for(session=session))
    assert list(session) == [SESSION_KEY]


def test_a_legacy_session_entry_is_not_a_state():
    request = request_for(session={LEGACY_SESSION_KEY: {"abc": {"provider": "bigin", "created": 1e12}}})
    with pytest.raises(StateError):
        state.consume(request, "bigin", "abc")


def test_an_overlong_next_is_not_kept():
    request = request_for()
    value, _ = begin(request, next_url="/" + "a" * state.MAX_NEXT_URL_LENGTH)
    assert state.consume(request, "bigin", value).next_url == ""


def test_a_verifier_no_key_can_decrypt_is_refused_cleanly(settings):
    request = request_for()
    value, _ = begin(request, use_pkce=True)
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": ["SysVB7yDmZxXQt8pKl-a7-JoHMFcKx9Q3PUMEc3xHpc="]}
    with pytest.raises(StateError, match="unknown") as raised:
        state.consume(request, "bigin", value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_repr_of_a_pending_request_hides_the_state_and_the_verifier():
    request = request_for()
    value, _ = begin(request, use_pkce=True)
    row = PendingAuthorisation.objects.get()
    pending = state.consume(request, "bigin", value)
    for obj in (row, pending):
        for text in (repr(obj), str(obj)):
            assert_no_secrets(text, [value, pending.code_verifier, row.encrypted_code_verifier, row.state_hash])


def test_error_reports_from_begin_and_consume_show_neither_state_nor_verifier(monkeypatch):
    request = request_for()
    value, _ = begin(request, use_pkce=True)
    verifier = crypto.decrypt(PendingAuthorisation.objects.get().encrypted_code_verifier)

    def broken(**kwargs):
        raise RuntimeError("the callback broke after reading the row")

    monkeypatch.setattr(state, "Authorisation", broken)
    with pytest.raises(RuntimeError):
        try:
            state.consume(request, "bigin", value)
        except RuntimeError:
            consume_report = error_report(sys.exc_info())
            raise
    assert "********" in consume_report
    assert_no_secrets(consume_report, [value, verifier, request.session[SESSION_KEY]])

    # begin() failing after the state and verifier exist: its locals are masked.
    new_state, new_verifier = "s" * 20 + uuid.uuid4().hex, "v" * 20 + uuid.uuid4().hex
    monkeypatch.setattr(state, "secrets", SimpleNamespace(token_urlsafe=lambda nbytes: new_state))
    monkeypatch.setattr(state, "_new_code_verifier", lambda: new_verifier)

    def create_then_fail(**fields):  # gets the state's hash and the verifier's ciphertext only
        raise RuntimeError("the database went away")

    monkeypatch.setattr(PendingAuthorisation.objects, "create", create_then_fail)
    with pytest.raises(RuntimeError):
        try:
            begin(request, use_pkce=True)
        except RuntimeError:
            begin_report = error_report(sys.exc_info())
            raise
    assert "********" in begin_report
    assert_no_secrets(begin_report, [new_state, new_verifier])
