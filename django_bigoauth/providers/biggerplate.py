"""Biggerplate, the mind-map library (accounts.biggerplate.com)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..exceptions import ProviderError
from .base import Identity, Provider, _number

__all__ = ["BiggerplateProvider"]


class BiggerplateProvider(Provider):
    name = "Biggerplate"
    authorize_url = "https://accounts.biggerplate.com/oauth/auth"
    token_url = "https://accounts.biggerplate.com/oauth/token"
    api_base_url = "https://api.biggerplate.com"
    # Scopes are not documented; a public client uses "account maps". Settable with SCOPES.
    default_scopes = ()
    identity_path = "/users/me"

    def extra_token_params(self, grant_type: str) -> dict[str, str]:
        # Biggerplate's documented code exchange carries response_type=token.
        return {"response_type": "token"} if grant_type == "authorization_code" else {}

    def read_expiry(self, data: Mapping[str, Any], now: datetime) -> datetime | None:
        # Both ``expires_in`` (relative) and ``expires`` (unix time) come back; the relative
        # value is immune to clock skew between us and Biggerplate, so it wins.
        if data.get("expires_in") not in (None, ""):
            return super().read_expiry(data, now)
        if data.get("expires") not in (None, ""):
            try:
                return datetime.fromtimestamp(_number(data["expires"], "expires"), tz=timezone.utc)
            except (OverflowError, OSError, ValueError):  # far beyond what a datetime or the OS can hold
                raise ProviderError("The token reply's 'expires' is not a usable time.") from None
        return None

    def parse_identity(self, data: Any) -> Identity | None:
        if not isinstance(data, dict):
            return None
        inner = data.get("data")
        user = inner if isinstance(inner, dict) else data
        external_id = user.get("Id") or user.get("id") or user.get("UserName") or user.get("username")
        if not external_id:
            return None
        return Identity(external_id=str(external_id), label=str(user.get("UserName") or user.get("username") or ""))
