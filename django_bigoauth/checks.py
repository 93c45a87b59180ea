"""System checks: ``manage.py check`` names each configuration mistake with a stable id and a hint.

The checks read the settings only: plain ``check`` (which ``migrate`` and ``runserver`` run too)
never sends a request. Each check, by id:

``django_bigoauth.E001``
    ``BIGOAUTH``, its ``PROVIDERS``, a provider entry, or Bigin's ``ACCOUNTS_SERVERS`` is not a dict
    (of code → URL string).
``django_bigoauth.E002``
    A provider has no ``CLIENT_ID``.
``django_bigoauth.E003``
    A provider has no ``CLIENT_SECRET``.
``django_bigoauth.E004``
    An unknown provider slug with no ``CLASS``, no ``ISSUER`` and not both ``AUTHORIZE_URL`` and
    ``TOKEN_URL`` (see *Adding a provider from settings*).
``django_bigoauth.E005``
    A ``CLASS`` that does not import (whatever its module raises: the message names the exception),
    or is not a ``Provider`` subclass.
``django_bigoauth.E006``
    An unknown ``DATA_CENTRE``, an ``ISSUER`` that is not a plain URL (no query, fragment or user
    name), ``IDENTITY_FIELD`` not a field name, or another provider-specific problem.
``django_bigoauth.E007``
    A plain ``http://`` endpoint on a host other than loopback (``127.0.0.1``, ``::1``, ``localhost``).
``django_bigoauth.E008``
    ``ENCRYPTION_KEYS`` holds something that is not a Fernet key (the message never repeats the value).
``django_bigoauth.E009``
    No ``ENCRYPTION_KEYS`` while ``DEBUG`` is off: an error, so ``manage.py check`` and ``migrate``
    stop until a key is set.
``django_bigoauth.E010``
    A provider's ``SCOPES`` is not a list or tuple of strings (``"ZohoBigin.modules.ALL"`` alone
    would be sent letter by letter).
``django_bigoauth.E011``
    ``REFRESH_LEEWAY``, ``STATE_TTL``, ``DISCOVERY_TTL`` or ``REFRESH_ON_401_INTERVAL`` is not a
    number ≥ 0, or ``HTTP_TIMEOUT`` not a number > 0 (a string such as ``"60"`` included).
``django_bigoauth.E012``
    ``AUTHORISE_ON_GET`` is not ``True`` or ``False``. A string such as ``"false"`` would look like
    "on" to a truth test; the app takes anything but ``True`` as off and keeps the confirmation page.
``django_bigoauth.E013``
    A provider's ``EXTRA_AUTHORIZE_PARAMS`` is not a dict of strings, or sets a parameter the app
    sets itself: ``state``, ``nonce``, ``code_challenge``, ``code_challenge_method``,
    ``redirect_uri``, ``client_id``, ``response_type`` or ``scope`` (those are never sent from it).
``django_bigoauth.W001``
    No ``ENCRYPTION_KEYS`` while ``DEBUG`` is on: a key is derived from ``SECRET_KEY``
    (HKDF-SHA256).
``django_bigoauth.W002``
    An unknown key in ``BIGOAUTH`` or a provider entry — a typo? Each provider class declares the
    keys it reads (``Provider.settings_keys``), and the hint names them: ``ISSUER`` is known to an
    OpenID Connect provider, ``DATA_CENTRE`` to Bigin.
``django_bigoauth.W003``
    ``SCOPES`` are set without any scope the provider needs to tell whose account it is — Bigin's
    ``ZohoBigin.org.READ`` or ``ZohoBigin.org.ALL``: the organisation cannot be read, so the account
    is linked without an organisation id and two organisations of one user cannot be told apart.
``django_bigoauth.W004``
    Only with ``manage.py check --deploy``: an ``ISSUER``'s discovery document cannot be fetched,
    names another issuer, or names an endpoint that is not ``https://``. (Not in plain ``check``:
    every ``manage.py`` command runs those, and they must not wait on the network.)
"""

# The definition list above is the documentation's "System checks" page (docs/checks.rst renders it
# with autodoc); tests/test_checks.py keeps its ids equal to the ids this module emits.

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from .conf import DEFAULTS, SETTING_NAME, bigoauth_settings
from .netloc import is_safe_endpoint

__all__ = ["ID", "check_settings"]

ID = "django_bigoauth"

# Messages and hints are for the person running ``manage.py check``: translated into the active
# language (settings.LANGUAGE_CODE for manage.py). Setting names, keys and values stay as written.


@checks.register(checks.Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    user_settings = getattr(settings, SETTING_NAME, {})
    if not isinstance(user_settings, dict):
        return [checks.Error(_("%(setting)s must be a dict.") % {"setting": SETTING_NAME}, id=f"{ID}.E001")]
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            _("Unknown key %(key)r in %(setting)s.") % {"key": key, "setting": SETTING_NAME},
            hint=_("Known keys: %(keys)s.") % {"keys": ", ".join(DEFAULTS)},
            id=f"{ID}.W002",
        )
        for key in user_settings
        if key not in DEFAULTS
    ]
    providers = user_settings.get("PROVIDERS", {})
    if not isinstance(providers, dict):
        return [
            *messages,
            checks.Error(
                _("%(setting)s['PROVIDERS'] must be a dict of slug -> settings.") % {"setting": SETTING_NAME},
                id=f"{ID}.E001",
            ),
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
    for key, must_be_positive in (
        ("REFRESH_LEEWAY", False),
        ("HTTP_TIMEOUT", True),
        ("STATE_TTL", False),
        ("DISCOVERY_TTL", False),
        ("REFRESH_ON_401_INTERVAL", False),
    ):
        if key not in user_settings:
            continue
        value = user_settings[key]
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if is_number and (value > 0 if must_be_positive else value >= 0):
            continue
        names = {"setting": SETTING_NAME, "key": key, "value": value}
        if must_be_positive:
            text = _("%(setting)s[%(key)r] is %(value)r; it must be a number of seconds greater than 0.") % names
        else:
            text = _("%(setting)s[%(key)r] is %(value)r; it must be a number of seconds, 0 or more.") % names
        messages.append(
            checks.Error(
                text,
                hint=_("Write a plain number, not a string: the default is %(default)s.") % {"default": DEFAULTS[key]},
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
            _("%(setting)s['AUTHORISE_ON_GET'] is %(value)r; it must be True or False.")
            % {"setting": SETTING_NAME, "value": value},
            hint=_("Write True or False, not a string. Anything but True keeps the confirmation page."),
            id=f"{ID}.E012",
        )
    ]


def _check_provider(slug: str, entry: Any) -> list[checks.CheckMessage]:
    from django.utils.module_loading import import_string

    from .providers import Provider, get_provider, provider_class_path

    where = f"{SETTING_NAME}['PROVIDERS'][{slug!r}]"
    if not isinstance(entry, dict):
        return [checks.Error(_("%(where)s must be a dict.") % {"where": where}, id=f"{ID}.E001")]
    messages: list[checks.CheckMessage] = []
    for key, check_id, hint in (
        ("CLIENT_ID", "E002", _("Copy the client id from the provider's developer console.")),
        ("CLIENT_SECRET", "E003", _("Copy the client secret from the provider's developer console.")),
    ):
        if not entry.get(key):
            messages.append(
                checks.Error(
                    _("%(where)s has no %(key)s.") % {"where": where, "key": key}, hint=hint, id=f"{ID}.{check_id}"
                )
            )
    try:
        path = provider_class_path(slug, entry)
    except ImproperlyConfigured:
        messages.append(
            checks.Error(
                _("Unknown provider %(slug)r in %(setting)s['PROVIDERS'].") % {"slug": slug, "setting": SETTING_NAME},
                hint=_(
                    "Use 'biggerplate' or 'bigin'; for a standard server give its ISSUER (OpenID Connect) or its "
                    "AUTHORIZE_URL and TOKEN_URL (OAuth 2.0); or name your own Provider subclass with 'CLASS'."
                ),
                id=f"{ID}.E004",
            )
        )
        return messages
    # As providers.base.import_provider_class does, in two steps, so that each failure has its message.
    names = {"setting": SETTING_NAME, "path": path}
    try:
        cls = import_string(path)
    except ImportError as exc:
        messages.append(
            checks.Error(
                _("%(setting)s provider CLASS %(path)r cannot be imported: %(error)s") % {**names, "error": exc},
                hint=_("CLASS is a dotted path to a Provider subclass."),
                id=f"{ID}.E005",
            )
        )
        return messages
    except Exception as exc:
        # A bug in the module itself (SyntaxError, a failing import-time call): report, do not crash.
        messages.append(
            checks.Error(
                _("%(setting)s provider CLASS %(path)r cannot be imported: its module raised %(type)s: %(error)s")
                % {**names, "type": type(exc).__name__, "error": exc},
                hint=_("Fix the error in that module; `python -c 'import <module>'` shows the traceback."),
                id=f"{ID}.E005",
            )
        )
        return messages
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        messages.append(
            checks.Error(
                _("%(setting)s provider CLASS %(path)r is not a Provider subclass.") % names,
                hint=_("CLASS is a dotted path to a Provider subclass."),
                id=f"{ID}.E005",
            )
        )
        return messages
    # The provider class declares the keys it reads: anything else is a typo, or meant for another.
    known = sorted(cls.settings_keys)
    messages.extend(
        checks.Warning(
            _("Unknown key %(key)r in %(setting)s.") % {"key": key, "setting": where},
            hint=_("Known keys: %(keys)s.") % {"keys": ", ".join(known)},
            id=f"{ID}.W002",
        )
        for key in entry
        if key not in cls.settings_keys
    )
    scopes = entry.get("SCOPES")
    scopes_ok = scopes is None or (isinstance(scopes, (list, tuple)) and all(isinstance(s, str) for s in scopes))
    if not scopes_ok:
        messages.append(
            checks.Error(
                _("%(where)s SCOPES is %(value)r; it must be a list or tuple of strings.")
                % {"where": where, "value": scopes},
                hint=_(
                    'Write SCOPES=["ZohoBigin.modules.ALL"], not SCOPES="ZohoBigin.modules.ALL": '
                    "the provider class joins the scopes itself."
                ),
                id=f"{ID}.E010",
            )
        )
    messages.extend(_check_extra_authorize_params(where, entry.get("EXTRA_AUTHORIZE_PARAMS")))
    type_errors = cls.settings_type_errors(entry)
    if type_errors:
        # The provider would fail reading these: nothing further can be checked without crashing.
        messages.extend(
            checks.Error(
                f"{where}: {problem}",
                hint=_('For example {"us": "https://accounts.zoho.com", "eu": "https://accounts.zoho.eu"}.'),
                id=f"{ID}.E001",
            )
            for problem in type_errors
        )
        return messages
    provider = get_provider(slug)
    messages.extend(checks.Error(f"{where}: {problem}", id=f"{ID}.E006") for problem in provider.configuration_errors())
    messages.extend(
        checks.Error(
            _("%(where)s %(key)s is %(url)r: plain http:// is refused except on loopback hosts.")
            % {"where": where, "key": key, "url": url},
            hint=_("Use https://, or 127.0.0.1 / ::1 / localhost for a local stand-in server."),
            id=f"{ID}.E007",
        )
        for key, url in provider.endpoint_urls().items()
        if not is_safe_endpoint(url)
    )
    if scopes is not None and scopes_ok and provider.identity_scopes and provider.identity_scopes.isdisjoint(scopes):
        wanted = sorted(provider.identity_scopes, reverse=True)
        messages.append(
            checks.Warning(
                _("%(where)s SCOPES lack the scope that names the account: one of %(scopes)s.")
                % {"where": where, "scopes": ", ".join(wanted)},
                hint=_(
                    "Without one the account's owner at %(provider)s (for Bigin, the organisation) cannot be read: "
                    "the account is linked without an external id, so two of one user's accounts cannot be told "
                    "apart. Add %(scope)r to SCOPES."
                )
                % {"provider": provider.display_name, "scope": wanted[0]},
                id=f"{ID}.W003",
            )
        )
    return messages


def _check_extra_authorize_params(where: str, extra: Any) -> list[checks.CheckMessage]:
    """A dict of strings that leaves alone what the app sets itself (state, PKCE, redirect_uri...)."""
    from .providers.base import RESERVED_AUTHORIZE_PARAMS

    if extra is None:
        return []
    if not (isinstance(extra, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items())):
        return [
            checks.Error(
                _("%(where)s EXTRA_AUTHORIZE_PARAMS must be a dict of parameter name -> string.") % {"where": where},
                hint=_('For example {"prompt": "select_account", "hd": "example.com"}.'),
                id=f"{ID}.E013",
            )
        ]
    reserved = sorted(set(extra) & RESERVED_AUTHORIZE_PARAMS)
    if not reserved:
        return []
    return [
        checks.Error(
            _("%(where)s EXTRA_AUTHORIZE_PARAMS sets %(names)s, which the app sets itself; they are not sent.")
            % {"where": where, "names": ", ".join(reserved)},
            hint=_(
                "state, nonce and the PKCE challenge protect the sign-in, and redirect_uri, client_id and "
                "response_type must match the code exchange: remove them. Scopes go in SCOPES."
            ),
            id=f"{ID}.E013",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def check_discovery(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W004 (``check --deploy`` only): each provider's metadata can be fetched and used.

    Only with ``--deploy``: every other ``manage.py`` command runs the checks too, and they
    must not wait on the network (the demo's sandbox, for one, is not served yet at start-up).
    """
    from .providers import get_provider

    user_settings = getattr(settings, SETTING_NAME, {})
    providers = user_settings.get("PROVIDERS", {}) if isinstance(user_settings, dict) else {}
    if not isinstance(providers, dict):
        return []
    messages: list[checks.CheckMessage] = []
    for slug in providers:
        try:
            problems = get_provider(slug).discovery_errors()
        except Exception:  # noqa: BLE001, S112 - a provider that cannot be built is check_settings' to report
            continue
        messages.extend(
            checks.Warning(
                f"{SETTING_NAME}['PROVIDERS'][{slug!r}]: {problem}",
                hint=_(
                    "Sign-ins with this provider fail with a 502 or 504 page until its ISSUER answers with a "
                    "discovery document naming that same issuer. Check ISSUER (exactly as the document's 'issuer', "
                    "trailing slash included) and that this server can reach it; or give AUTHORIZE_URL and TOKEN_URL."
                ),
                id=f"{ID}.W004",
            )
            for problem in problems
        )
    return messages


def _check_encryption_keys() -> list[checks.CheckMessage]:
    from . import crypto

    hint = _(
        "Generate a key with `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'` and list it in ENCRYPTION_KEYS."
    )
    if not bigoauth_settings.ENCRYPTION_KEYS:
        text = _(
            "%(setting)s['ENCRYPTION_KEYS'] is not set: tokens are encrypted with a key derived "
            "from SECRET_KEY, so changing SECRET_KEY makes every stored token unreadable."
        ) % {"setting": SETTING_NAME}
        if settings.DEBUG:
            return [checks.Warning(text, hint=hint, id=f"{ID}.W001")]
        return [checks.Error(text, hint=hint, id=f"{ID}.E009")]
    try:
        crypto.clear_cache()
        crypto.encrypt("check")
    except ImproperlyConfigured:
        # Not the exception's text: it is English, and the key material stays out of the message.
        text = _("%(setting)s['ENCRYPTION_KEYS'] must hold Fernet keys; one of them is not.") % {
            "setting": SETTING_NAME
        }
        return [checks.Error(text, hint=hint, id=f"{ID}.E008")]
    return []
