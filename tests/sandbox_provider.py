"""The example project's sandbox as a plain OAuth 2.0 provider, for tests whose worker processes
cannot import the example project (its endpoints come from the settings they are given)."""

from __future__ import annotations

from typing import Any

from django_bigoauth.providers import Identity
from django_bigoauth.providers.base import Provider


class Sandbox(Provider):
    """The sandbox as a plain OAuth 2.0 provider: endpoints come from the settings below."""

    name = "Sandbox"
    default_scopes = ("read",)
    pkce = True
    identity_path = "/me"

    def parse_identity(self, data: Any) -> Identity | None:
        return Identity(str(data["id"]), str(data["username"])) if isinstance(data, dict) else None
