"""A leeway that fits the token: stale at ``min(REFRESH_LEEWAY, lifetime / 2)`` before expiry.

oidc-provider's access tokens live 20 seconds by default; with the default 60-second leeway
they would be stale on arrival and every call would refresh. Half their lifetime is used
instead, the lifetime being what the reply said when the token was stored.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.policy import effective_leeway, is_stale
from tests.oauthflow import callback_url, start
from tests.oidcstub import OIDCStub

pytestmark = pytest.mark.django_db

KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="


def shift_back(account: LinkedAccount, seconds: float) -> None:
    """As if ``seconds`` had passed since the token was stored."""
    token = Token.objects.get(account=account)
    Token.objects.filter(pk=token.pk).update(
        expires_at=token.expires_at - timedelta(seconds=seconds),
        refreshed_at=token.refreshed_at - timedelta(seconds=seconds),
    )


def test_a_token_with_a_20_second_lifetime_is_not_refreshed_on_every_call(signed_in, settings):
    stub = OIDCStub(expires_in=20).start()
    try:
        settings.BIGOAUTH = {"PROVIDERS": {"acme": stub.settings_entry()}, "ENCRYPTION_KEYS": [KEY]}
        assert settings.BIGOAUTH.get("REFRESH_LEEWAY", 60) == 60  # the default, longer than the token lives
        authorised = start(signed_in, "acme")
        response = signed_in.get(
            callback_url("acme"),
            {"state": authorised["state"], "code": stub.issue_code(authorised), "iss": stub.issuer},
        )
        assert response.status_code == 302
        account = LinkedAccount.objects.get()

        for _ in range(5):
            account.get_access_token()
        assert len(stub.calls("/token")) == 1  # the code exchange only

        shift_back(account, 9)  # 11 seconds left: more than half the lifetime
        account.get_access_token()
        assert len(stub.calls("/token")) == 1

        shift_back(account, 2)  # 9 seconds left: less than half
        first = account.get_access_token()
        second = account.get_access_token()
        assert len(stub.calls("/token")) == 2 and first == second  # one refresh, then the new token is fresh
        token = Token.objects.get(account=account)
        assert timedelta(seconds=18) < token.expires_at - token.refreshed_at <= timedelta(seconds=21)
    finally:
        stub.stop()


@pytest.mark.parametrize(
    ("lifetime", "leeway", "expected"),
    [(20, 60, 10), (3600, 60, 60), (120, 60, 60), (100, 60, 50), (20, 5, 5), (0, 60, 60)],
)
def test_effective_leeway_is_the_smaller_of_the_setting_and_half_the_lifetime(lifetime, leeway, expected):
    obtained = timezone.now()
    assert effective_leeway(leeway, obtained + timedelta(seconds=lifetime), obtained) == expected


def test_without_a_known_obtained_time_the_setting_applies():
    now = timezone.now()
    assert is_stale(now + timedelta(seconds=30), 60, now, obtained_at=None)
    assert not is_stale(now + timedelta(seconds=30), 60, now, obtained_at=now - timedelta(seconds=1))
