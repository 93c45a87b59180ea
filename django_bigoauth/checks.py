"""System checks: ``manage.py check`` names each configuration mistake with a stable id.

| id | what |
|---|---|
| django_bigoauth.E001 | ``BIGOAUTH`` or its ``PROVIDERS`` is not a dict |
| django_bigoauth.E002 | a provider has no ``CLIENT_ID`` |
| django_bigoauth.E003 | a provider has no ``CLIENT_SECRET`` |
| django_bigoauth.E004 | an unknown provider slug with no ``CLASS`` |
| django_bigoauth.E005 | a ``CLASS`` that does not import, or is not a ``Provider`` |
| django_bigoauth.E006 | an unknown ``DATA_CENTRE`` (Bigin) or another provider-specific problem |
| django_bigoauth.E007 | a plain ``http://`` endpoint on a host other than loopback |
| django_bigoauth.E008 | ``ENCRYPTION_KEYS`` holds something that is not a Fernet key |
| django_bigoauth.E009 | no ``ENCRYPTION_KEYS`` while ``DEBUG`` is off |
| django_bigoauth.W001 | no ``ENCRYPTION_KEYS`` (a key is derived from ``SECRET_KEY``) |
| django_bigoauth.W002 | an unknown key in ``BIGOAUTH`` or in a provider entry (a typo?) |
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import DEFAULTS, PROVIDER_DEFAULTS, SETTING_NAME, bigoauth_settings
from .netloc import is_safe_endpoint

ID = "django_bigoauth"


@checks.register(checks.Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    user_settings = getattr(settings, SETTING_NAME, {})
    if not isinstance(user_settings, dict):
        return [checks.Error(f"{SETTING_NAME} must be a dict.", id=f"{ID}.E001")]
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            f"Unknown key {key!r} in {SETTING_NAME}.", hint=f"Known keys: {', '.join(DEFAULTS)}.", id=f"{ID}.W002"
        )
        for key in user_settings
        if key not in DEFAULTS
    ]
    providers = user_settings.get("PROVIDERS", {})
    if not isinstance(providers, dict):
        return [
            *messages,
            checks.Error(f"{SETTING_NAME}['PROVIDERS'] must be a dict of slug -> settings.", id=f"{ID}.E001"),
        ]
    for slug, entry in providers.items():
        messages.extend(_check_provider(slug, entry))
    messages.extend(_check_encryption_keys())
    return messages


def _check_provider(slug: str, entry: Any) -> list[checks.CheckMessage]:
    from .providers import get_provider, provider_class_path
    from .providers.base import import_provider_class

    where = f"{SETTING_NAME}['PROVIDERS'][{slug!r}]"
    if not isinstance(entry, dict):
        return [checks.Error(f"{where} must be a dict.", id=f"{ID}.E001")]
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            f"Unknown key {key!r} in {where}.", hint=f"Known keys: {', '.join(PROVIDER_DEFAULTS)}.", id=f"{ID}.W002"
        )
        for key in entry
        if key not in PROVIDER_DEFAULTS
    ]
    for key, check_id in (("CLIENT_ID", "E002"), ("CLIENT_SECRET", "E003")):
        if not entry.get(key):
            messages.append(
                checks.Error(
                    f"{where} has no {key}.",
                    hint=f"Copy the {key.lower().replace('_', ' ')} from the provider's developer console.",
                    id=f"{ID}.{check_id}",
                )
            )
    try:
        path = provider_class_path(slug, entry)
    except ImproperlyConfigured:
        messages.append(
            checks.Error(
                f"Unknown provider {slug!r} in {SETTING_NAME}['PROVIDERS'].",
                hint="Use 'biggerplate' or 'bigin', or name your own Provider subclass with 'CLASS'.",
                id=f"{ID}.E004",
            )
        )
        return messages
    try:
        import_provider_class(path)
    except ImproperlyConfigured as exc:
        messages.append(checks.Error(str(exc), hint="CLASS is a dotted path to a Provider subclass.", id=f"{ID}.E005"))
        return messages
    provider = get_provider(slug)
    messages.extend(checks.Error(f"{where}: {problem}", id=f"{ID}.E006") for problem in provider.configuration_errors())
    messages.extend(
        checks.Error(
            f"{where} {key} is {url!r}: plain http:// is refused except on loopback hosts.",
            hint="Use https://, or 127.0.0.1 / ::1 / localhost for a local stand-in server.",
            id=f"{ID}.E007",
        )
        for key, url in provider.endpoint_urls().items()
        if not is_safe_endpoint(url)
    )
    return messages


def _check_encryption_keys() -> list[checks.CheckMessage]:
    from . import crypto

    if not bigoauth_settings.ENCRYPTION_KEYS:
        text = (
            f"{SETTING_NAME}['ENCRYPTION_KEYS'] is not set: tokens are encrypted with a key derived "
            "from SECRET_KEY, so changing SECRET_KEY makes every stored token unreadable."
        )
        hint = (
            "Generate a key with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'` and list it in ENCRYPTION_KEYS."
        )
        if settings.DEBUG:
            return [checks.Warning(text, hint=hint, id=f"{ID}.W001")]
        return [checks.Error(text, hint=hint, id=f"{ID}.E009")]
    try:
        crypto.clear_cache()
        crypto.encrypt("check")
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id=f"{ID}.E008")]
    return []
