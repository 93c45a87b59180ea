"""The provider registry: slug -> provider instance, built from settings on first use.

Nothing is registered as a side effect of importing a module; ``BIGOAUTH["PROVIDERS"]`` is the
whole list, and the cache is dropped when that setting changes.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ..conf import BUILTIN_PROVIDER_CLASSES, OAUTH2_CLASS, OPENID_CONNECT_CLASS, bigoauth_settings
from ..exceptions import UnknownProvider  # defined in exceptions.py; re-exported here
from .base import CallbackContext, Identity, Provider, TokenReply, import_provider_class

__all__ = [
    "CallbackContext",
    "Identity",
    "Provider",
    "TokenReply",
    "UnknownProvider",
    "clear_cache",
    "get_provider",
    "get_providers",
]

_cache: dict[str, Provider] = {}


def provider_class_path(slug: str, config: dict) -> str:
    """``CLASS``; else the built-in class of the slug; else a standard server from its settings.

    ``ISSUER`` makes an OpenID Connect provider, ``AUTHORIZE_URL`` with ``TOKEN_URL`` a plain
    OAuth 2.0 one. Decided from the settings alone: nothing is fetched here.
    """
    path = config.get("CLASS") or BUILTIN_PROVIDER_CLASSES.get(slug)
    if path:
        return path
    if config.get("ISSUER"):
        return OPENID_CONNECT_CLASS
    if config.get("AUTHORIZE_URL") and config.get("TOKEN_URL"):
        return OAUTH2_CLASS
    raise ImproperlyConfigured(
        f"BIGOAUTH provider {slug!r} is not built in; give its ISSUER (OpenID Connect), its AUTHORIZE_URL "
        "and TOKEN_URL (OAuth 2.0), or name its class with 'CLASS'."
    )


def get_provider(slug: str) -> Provider:
    if slug not in _cache:
        try:
            config = bigoauth_settings.provider_config(slug)
        except KeyError:
            raise UnknownProvider(f"No provider {slug!r} is configured in BIGOAUTH['PROVIDERS'].") from None
        cls = import_provider_class(provider_class_path(slug, config))
        _cache[slug] = cls(slug, config)
    return _cache[slug]


def get_providers() -> list[Provider]:
    return [get_provider(slug) for slug in bigoauth_settings.PROVIDERS]


def clear_cache() -> None:
    _cache.clear()


def _clear_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "BIGOAUTH":
        clear_cache()


setting_changed.connect(_clear_on_setting_changed, dispatch_uid="django_bigoauth.providers")
