"""The one place the ``BIGOAUTH`` setting is read.

Values are looked up lazily and cached; the cache is dropped on Django's ``setting_changed``
signal, so ``override_settings(BIGOAUTH=...)`` works in tests and nothing reads settings at
import time.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = [
    "BUILTIN_PROVIDER_CLASSES",
    "DEFAULTS",
    "PROVIDER_DEFAULTS",
    "SETTING_NAME",
    "BigOAuthSettings",
    "bigoauth_settings",
]

SETTING_NAME = "BIGOAUTH"

DEFAULTS: dict[str, Any] = {
    # slug -> per-provider dict, see PROVIDER_DEFAULTS
    "PROVIDERS": {},
    # seconds before expiry at which a token counts as stale and is refreshed first
    "REFRESH_LEEWAY": 60,
    # seconds, every outbound HTTP call (token, revoke, identity, API session default)
    "HTTP_TIMEOUT": 10,
    # seconds an authorisation request (its state and PKCE verifier) stays usable
    "STATE_TTL": 600,
    # True: a GET to the authorise view starts the flow at once (one-click links, no CSRF check);
    # False: a GET shows a confirmation page that POSTs. Site-level links always need the POST.
    "AUTHORISE_ON_GET": False,
    # Fernet keys; the first encrypts, all decrypt. Empty: derived from SECRET_KEY (checks W001/E009)
    "ENCRYPTION_KEYS": [],
    # seconds: after a 401 from the API, a token obtained more recently than this is not
    # refreshed again (Zoho answers 401 to a missing scope too, and caps refreshes)
    "REFRESH_ON_401_INTERVAL": 30,
    # import path of the django_bigoauth.transport.Transport (sub)class all provider HTTP goes through
    "TRANSPORT": "django_bigoauth.transport.Transport",
    # seconds a discovery document or key set (providers with ISSUER) is kept before it is fetched again
    "DISCOVERY_TTL": 3600,
}

# Defaults of keys every provider entry may carry. ``None`` means "the provider class decides".
# Which keys a provider accepts beyond these is its own declaration (``Provider.settings_keys``).
PROVIDER_DEFAULTS: dict[str, Any] = {
    "CLASS": None,
    "NAME": None,
    "CLIENT_ID": "",
    "CLIENT_SECRET": "",
    "SCOPES": None,
    "REDIRECT_URI": None,
    "PKCE": None,
    "AUTH_HEADER_FORMAT": None,
    "AUTHORIZE_URL": None,
    "TOKEN_URL": None,
    "REVOKE_URL": None,
    "API_BASE_URL": None,
    "EXTRA_AUTHORIZE_PARAMS": None,
}

# Providers that need no CLASS key.
BUILTIN_PROVIDER_CLASSES: dict[str, str] = {
    "biggerplate": "django_bigoauth.providers.biggerplate.BiggerplateProvider",
    "bigin": "django_bigoauth.providers.bigin.BiginProvider",
}

# Entries with neither CLASS nor a built-in slug: a standard server, from its settings alone.
OPENID_CONNECT_CLASS = "django_bigoauth.providers.generic.OpenIDConnectProvider"  # ISSUER
OAUTH2_CLASS = "django_bigoauth.providers.generic.OAuth2Provider"  # AUTHORIZE_URL and TOKEN_URL


class BigOAuthSettings:
    """Attribute access to ``settings.BIGOAUTH`` with defaults: ``bigoauth_settings.HTTP_TIMEOUT``."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTING_NAME, None) or {}
        if not isinstance(value, dict):
            return {}
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Invalid BIGOAUTH setting: {name!r}")
        if name not in self._cache:
            self._cache[name] = self.user_settings.get(name, DEFAULTS[name])
        return self._cache[name]

    def provider_config(self, slug: str) -> dict[str, Any]:
        """The entry for one provider, every key present (defaults filled in)."""
        entry = self.PROVIDERS.get(slug)
        if entry is None:
            raise KeyError(slug)
        return {**PROVIDER_DEFAULTS, **entry}

    def reload(self) -> None:
        # Objects built from settings elsewhere (provider instances, Fernet keys, the transport)
        # are dropped by those modules' own setting_changed receivers: conf imports none of them.
        self._cache.clear()


bigoauth_settings = BigOAuthSettings()


@receiver(setting_changed)
def _reload_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "SECRET_KEY"):
        bigoauth_settings.reload()
