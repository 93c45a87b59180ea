"""Helpers for the view tests: start an authorisation request, come back to the callback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.urls import reverse

from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import ANY


def start(client, slug: str, **params) -> dict[str, str]:
    """POST to the authorise view (the confirmation page's button); returns the provider URL's query."""
    response = client.post(reverse("bigoauth:authorise", args=[slug]), params)
    assert response.status_code == 302, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    return {key: values[0] for key, values in query.items()}


def callback_url(slug: str) -> str:
    return reverse("bigoauth:callback", args=[slug])


def code_for(fake, authorised: dict[str, str], **kwargs) -> str:
    """A code as the consent page hands it out: bound to the client, redirect URI and PKCE challenge
    of the authorisation request it answers, as strict servers bind it."""
    return fake.issue_code(
        client_id=authorised.get("client_id"),
        redirect_uri=authorised.get("redirect_uri", ANY),
        code_challenge=authorised.get("code_challenge"),
        **kwargs,
    )


def bigin_return(fake, authorised: dict[str, str], **overrides) -> dict[str, str]:
    """The query Zoho sends the browser back with, for a code the fake server will accept."""
    params = {
        "state": authorised["state"],
        "code": code_for(fake, authorised),
        "location": "us",
        "accounts-server": fake.url,
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def biggerplate_return(fake, authorised: dict[str, str], **overrides) -> dict[str, str]:
    params = {"state": authorised["state"], "code": code_for(fake, authorised)}
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def nothing_stored() -> bool:
    return LinkedAccount.objects.count() == 0 and Token.objects.count() == 0


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]
