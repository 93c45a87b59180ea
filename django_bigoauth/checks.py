"""System checks: ``manage.py check`` names each configuration mistake with a stable id.

Each check, by id (a definition list, which Sphinx's autodoc renders as it is):

``django_bigoauth.E001``
    ``BIGOAUTH``, its ``PROVIDERS``, a provider entry or its ``ACCOUNTS_SERVERS`` is not a dict
``django_bigoauth.E002``
    a provider has no ``CLIENT_ID``
``django_bigoauth.E003``
    a provider has no ``CLIENT_SECRET``
``django_bigoauth.E004``
    an unknown provider slug with no ``CLASS``
``django_bigoauth.E005``
    a ``CLASS`` that does not import (whatever its module raises), or is not a ``Provider``
``django_bigoauth.E006``
    an unknown ``DATA_CENTRE`` (Bigin) or another provider-specific problem
``django_bigoauth.E007``
    a plain ``http://`` endpoint on a host other than loopback
``django_bigoauth.E008``
    ``ENCRYPTION_KEYS`` holds something that is not a Fernet key
``django_bigoauth.E009``
    no ``ENCRYPTION_KEYS`` while ``DEBUG`` is off
``django_bigoauth.E010``
    a provider's ``SCOPES`` is not a list or tuple of strings
``django_bigoauth.E011``
    ``REFRESH_LEEWAY``, ``STATE_TTL`` not a number >= 0, or ``HTTP_TIMEOUT`` not one > 0
``django_bigoauth.E012``
    ``AUTHORISE_ON_GET`` is not ``True`` or ``False``
``django_bigoauth.W001``
    no ``ENCRYPTION_KEYS`` (a key is derived from ``SECRET_KEY``)
``django_bigoauth.W002``
    an unknown key in ``BIGOAUTH`` or in a provider entry (a typo?)
``django_bigoauth.W003``
    Bigin's ``SCOPES`` are set without ``ZohoBigin.org.READ`` (or ``.ALL``)
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import DEFAULTS, PROVIDER_DEFAULTS, SETTING_NAME, bigoauth_settings
from .netloc import is_safe_endpoint

__all__ = ["ID", "check_settings"]

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
    messages.extend(_check_durations(user_settings))
    messages.extend(_check_authorise_on_get(user_settings))
    for slug, entry in providers.items():
        messages.extend(_check_provider(slug, entry))
    messages.extend(_check_encryption_keys())
    return messages


def _check_durations(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    """Seconds are numbers: a string here would only fail later, in a view, as a 500."""
    messages: list[checks.CheckMessage] = []
    for key, must_be_positive in (("REFRESH_LEEWAY", False), ("HTTP_TIMEOUT", True), ("STATE_TTL", False)):
        if key not in user_settings:
            continue
        value = user_settings[key]
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if is_number and (value > 0 if must_be_positive else value >= 0):
            continue
        wanted = "a number of seconds greater than 0" if must_be_positive else "a number of seconds, 0 or more"
        messages.append(
            checks.Error(
                f"{SETTING_NAME}[{key!r}] is {value!r}; it must be {wanted}.",
                hint=f"Write a plain number, not a string: the default is {DEFAULTS[key]}.",
                id=f"{ID}.E011",
            )
        )
    return messages


def _check_authorise_on_get(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    """Only ``True`` turns one-click GET links on; ``"false"`` would read as on, so it is an error."""
    value = user_settings.get("AUTHORISE_ON_GET", False)
    if isinstance(value, bool):
        return []
    return [
        checks.Error(
            f"{SETTING_NAME}['AUTHORISE_ON_GET'] is {value!r}; it must be True or False.",
            hint="Write True or False, not a string. Anything but True keeps the confirmation page.",
            id=f"{ID}.E012",
        )
    ]


def _check_provider(slug: str, entry: Any) -> list[checks.CheckMessage]:
    from .providers import get_provider, provider_class_path
    from .providers.base import import_provider_class
    from .providers.bigin import BiginProvider

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
    except Exception as exc:
        # A bug in the module itself (SyntaxError, a failing import-time call): report, do not crash.
        messages.append(
            checks.Error(
                f"{SETTING_NAME} provider CLASS {path!r} cannot be imported: its module raised "
                f"{type(exc).__name__}: {exc}",
                hint="Fix the error in that module; `python -c 'import <module>'` shows the traceback.",
                id=f"{ID}.E005",
            )
        )
        return messages
    scopes = entry.get("SCOPES")
    scopes_ok = scopes is None or (isinstance(scopes, (list, tuple)) and all(isinstance(s, str) for s in scopes))
    if not scopes_ok:
        messages.append(
            checks.Error(
                f"{where} SCOPES is {scopes!r}; it must be a list or tuple of strings.",
                hint='Write SCOPES=["ZohoBigin.modules.ALL"], not SCOPES="ZohoBigin.modules.ALL": '
                "the provider class joins the scopes itself.",
                id=f"{ID}.E010",
            )
        )
    servers = entry.get("ACCOUNTS_SERVERS")
    if servers is not None and not (
        isinstance(servers, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in servers.items())
    ):
        # The provider reads it as a dict: nothing further can be checked without crashing.
        messages.append(
            checks.Error(
                f"{where} ACCOUNTS_SERVERS must be a dict of data-centre code -> accounts-server URL.",
                hint='For example {"us": "https://accounts.zoho.com", "eu": "https://accounts.zoho.eu"}.',
                id=f"{ID}.E001",
            )
        )
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
    if scopes is not None and scopes_ok and isinstance(provider, BiginProvider) and not provider.reads_organisation:
        messages.append(
            checks.Warning(
                f"{where} SCOPES lack ZohoBigin.org.READ (or ZohoBigin.org.ALL).",
                hint="Without it the organisation cannot be read: the account is linked without an organisation "
                "id, so two organisations of one user cannot be told apart. Add 'ZohoBigin.org.READ' to SCOPES.",
                id=f"{ID}.W003",
            )
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
