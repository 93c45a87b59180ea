"""The sandbox as a django_bigoauth provider, registered with ``"CLASS"`` in ``BIGOAUTH``.

This is also the recipe for adding any provider without forking: subclass ``Provider``, state
what differs, name the class in settings. Endpoints come from settings (``AUTHORIZE_URL``,
``TOKEN_URL``, ``REVOKE_URL``, ``API_BASE_URL``), because the sandbox lives wherever the demo
site is served.
"""

from __future__ import annotations

from typing import Any

from django_bigoauth.providers.base import Identity, Provider


class SandboxProvider(Provider):
    name = "Sandbox"
    default_scopes = ("read",)
    # django-oauth-toolkit requires PKCE (its PKCE_REQUIRED setting).
    pkce = True
    # Relative to API_BASE_URL: the sandbox's protected "who am I" endpoint.
    identity_path = "/me"

    def parse_identity(self, data: Any) -> Identity | None:
        """``{"id": 1, "username": "demo"}`` -> the sandbox user is the external account."""
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            return None
        return Identity(external_id=str(data["id"]), label=str(data.get("username") or ""))
