from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fakeprovider import FakeProvider, bigoauth_settings_for


@pytest.fixture
def fake_provider(settings):
    """A live token server on 127.0.0.1, with BIGOAUTH pointed at it for the test."""
    fake = FakeProvider().start()
    settings.BIGOAUTH = bigoauth_settings_for(fake)
    yield fake
    fake.stop()


@pytest.fixture
def make_account(db):
    """Create a linked account with a stored token; ``expires_in`` in seconds (negative: expired)."""
    from django_bigoauth.models import LinkedAccount, Token

    def make(
        provider="bigin",
        *,
        user=None,
        expires_in=3600,
        access_token="1000.access.initial",
        refresh_token="1000.refresh.initial",
        external_id="org-1",
        label="",
        api_domain="",
        accounts_server="",
        status=LinkedAccount.Status.ACTIVE,
    ):
        account = LinkedAccount.objects.create(
            provider=provider,
            user=user,
            external_id=external_id,
            label=label,
            status=status,
            api_domain=api_domain,
            accounts_server=accounts_server,
        )
        Token.objects.create(
            account=account,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=timezone.now() + timedelta(seconds=expires_in),
        )
        return account

    return make
