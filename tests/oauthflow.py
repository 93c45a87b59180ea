"""Helpers for the view tests: start an authorisation request, come back to the callback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.urls import reverse

from django_bigoauth.models import LinkedAccount, Token


def start(client, slug: str, **params) -> dict[str, str]:
    """POST to the authorise view (the confirmation page's button); returns the provider URL's query."""
    response = client.post(reverse("bigoauth:authorise", args=[slug]), params)
    assert response.status_code == 302, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    return {key: values[0] for key, values in query.items()}


def callback_url(slug: str) -> str:
    return reverse("bigoauth:callback", args=[slug])


def bigin_return(fake, authorised: dict[str, str], **overrides) -> dict[str, str]:
    """The query Zoho sends the browser back with, for a code the fake server will accept."""
    params = {
        "state": authorised["state"],
        "code": fake.issue_code(),
        "location": "us",
        "accounts-server": fake.url,
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def biggerplate_return(fake, authorised: dict[str, str], **overrides) -> dict[str, str]:
    params = {"state": authorised["state"], "code": fake.issue_code()}
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def nothing_stored() -> bool:
    return LinkedAccount.objects.count() == 0 and Token.objects.count() == 0


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]
