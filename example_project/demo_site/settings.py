"""Settings of the django_bigoauth demo site, read from the environment by django-environ.

Every variable is documented in ``example_project/.env.example``. A file ``example_project/.env``
is read when present (it is git-ignored: real client secrets go there); variables already set in
the environment win over it. With nothing set at all the site runs as a local demo: DEBUG on,
SQLite in ``example_project/db.sqlite3``, and only the built-in sandbox provider configured.
"""

from __future__ import annotations

import re
from pathlib import Path

import django
import environ

BASE_DIR = Path(__file__).resolve().parent.parent  # example_project/

env = environ.Env()

# DEMO_ENV_FILE="" reads no file at all (the test suite does this, so a developer's .env with
# real credentials never leaks into a test run).
ENV_FILE = env.str("DEMO_ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)

DEBUG = env.bool("DEBUG", default=True)
# The default is public on purpose: it only ever protects a demo on 127.0.0.1.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-bigoauth-demo-only-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "django_bigoauth",
    "sandbox",
    "demo_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
ASGI_APPLICATION = "demo_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates come first, so they can restyle the app's and the sandbox's pages.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# -- database ---------------------------------------------------------------------------------
# SQLite by default; DATABASE_URL=postgres://user@host:5432/name switches to PostgreSQL,
# mysql://user@host:3306/name (or mariadb://) to MariaDB/MySQL.

DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# django-environ knows mysql:// but takes mariadb:// for an engine named "mariadb"; both are Django's mysql backend.
DATABASES = {"default": env.db_url_config(re.sub(r"^mariadb://", "mysql://", DATABASE_URL))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # MySQL's "utf8" holds no 4-byte characters (emoji in a label); ?charset= in the URL still wins.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("charset", "utf8mb4")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The app's callback and refresh call the sandbox's token endpoint over HTTP, served by
    # another thread of the same process: writers must wait for each other, not fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=env.int("SQLITE_TIMEOUT", default=20),
        # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock at
        # BEGIN instead of failing when a read transaction tries to upgrade (Django 5.1+).
        **(
            {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
            if django.VERSION >= (5, 1)
            else {}
        ),
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- sign-in ----------------------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# -- i18n, static -----------------------------------------------------------------------------

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en-gb")
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# -- django_bigoauth --------------------------------------------------------------------------

# A fixed key for the out-of-the-box demo only (DEBUG on, nothing configured): it is public, so
# generate your own before linking real accounts. With DEBUG off there is no default, and the
# app's system check django_bigoauth.E009 stops the site until BIGOAUTH_ENCRYPTION_KEYS is set.
DEMO_ENCRYPTION_KEY = "ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWl0LTEyMzQ="
ENCRYPTION_KEYS = env.list("BIGOAUTH_ENCRYPTION_KEYS", default=[DEMO_ENCRYPTION_KEY] if DEBUG else [])

SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)
SANDBOX_BASE_URL = env.str("SANDBOX_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")


def _real_provider(prefix: str, **extra: object) -> dict[str, object] | None:
    """The BIGOAUTH entry of a real provider, or None when no credentials are given.

    Either value alone still configures the provider, so that ``manage.py check`` names the
    missing one instead of the provider silently vanishing.
    """
    client_id = env.str(f"{prefix}_CLIENT_ID", default="")
    client_secret = env.str(f"{prefix}_CLIENT_SECRET", default="")
    if not (client_id or client_secret):
        return None
    entry: dict[str, object] = {"CLIENT_ID": client_id, "CLIENT_SECRET": client_secret}
    if scopes := env.list(f"{prefix}_SCOPES", default=[]):
        entry["SCOPES"] = scopes
    if redirect_uri := env.str(f"{prefix}_REDIRECT_URI", default=""):
        entry["REDIRECT_URI"] = redirect_uri
    # None is "not set": the provider's default applies. "" is a value (a bare-token header).
    entry.update({key: value for key, value in extra.items() if value is not None})
    return entry


# The sandbox is the OpenID Connect provider this site serves under /sandbox/o/: its issuer
# depends on the address the site is served on, hence SANDBOX_BASE_URL.
SANDBOX_ISSUER = f"{SANDBOX_BASE_URL}/sandbox/o"

PROVIDERS: dict[str, dict[str, object]] = {}
if SANDBOX_ENABLED:
    # A standard server needs no class and no endpoint URLs: its ISSUER is enough (discovery).
    PROVIDERS["sandbox"] = {
        "ISSUER": SANDBOX_ISSUER,
        "CLIENT_ID": env.str("SANDBOX_CLIENT_ID", default="sandbox-client"),
        "CLIENT_SECRET": env.str("SANDBOX_CLIENT_SECRET", default="sandbox-demo-secret"),
    }


def _set_or_none(name: str) -> str | None:
    """The variable's value, "" included; None only when it is not set at all.

    (``env.str(name, default=None)`` cannot tell the two apart: it turns "" into None.)
    """
    return env.str(name) if name in env.ENVIRON else None


# Unset: "Bearer", the provider's default. Set but empty: the bare token.
if biggerplate := _real_provider("BIGGERPLATE", AUTH_HEADER_FORMAT=_set_or_none("BIGGERPLATE_AUTH_HEADER_FORMAT")):
    PROVIDERS["biggerplate"] = biggerplate
if bigin := _real_provider("BIGIN", DATA_CENTRE=env.str("BIGIN_DATA_CENTRE", default="") or "us"):
    PROVIDERS["bigin"] = bigin

BIGOAUTH = {
    "PROVIDERS": PROVIDERS,
    "REFRESH_LEEWAY": env.int("BIGOAUTH_REFRESH_LEEWAY", default=60),
    "HTTP_TIMEOUT": env.float("BIGOAUTH_HTTP_TIMEOUT", default=10),
    "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
}

# -- the sandbox: a real OpenID Connect provider (django-oauth-toolkit) ---------------------------

# Its RS256 signing key: made by `manage.py demo_setup`, kept out of git (see .gitignore).
SANDBOX_OIDC_KEY_FILE = Path(env.str("SANDBOX_OIDC_KEY_FILE", default=str(BASE_DIR / "sandbox-oidc-key.pem")))

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": SANDBOX_OIDC_KEY_FILE.read_text() if SANDBOX_OIDC_KEY_FILE.is_file() else "",
    # The issuer in the discovery document, the ID tokens and the callback's iss (RFC 9207).
    "OIDC_ISS_ENDPOINT": SANDBOX_ISSUER,
    # name, preferred_username (and email) in ID tokens and at userinfo, whatever the scopes.
    "OAUTH2_VALIDATOR_CLASS": "sandbox.validator.SandboxValidator",
    # Two minutes, so that a person trying the demo sees a token go stale and get refreshed.
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("SANDBOX_TOKEN_LIFETIME", default=120),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 120,
    # Every refresh issues a new refresh token; replaying a used one revokes the whole family,
    # so a refresh race in the app would show up at once as an account needing re-linking.
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "SCOPES": {
        "openid": "Tell the demo site who you are",
        "offline_access": "Stay connected when you are away (a refresh token)",
    },
    "DEFAULT_SCOPES": ["openid"],
    # RFC 8252: any port on a loopback redirect URI; treat "localhost" like 127.0.0.1 too.
    "ALLOW_LOCALHOST_LOOPBACK": True,
    # Adopt django-oauth-toolkit's RFC 9700 (OAuth security BCP) behaviour now.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
}
SANDBOX_APPLICATION_NAME = "Sandbox (django_bigoauth demo)"

# -- logging ----------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # The development server logs every request line, and a callback's carries the
        # authorisation code and state: mask them before they reach the console.
        "redact_oauth_query": {"()": "demo_site.logfilters.RedactOAuthQuery"},
    },
    "formatters": {
        "server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "handlers": {
        "server": {"class": "logging.StreamHandler", "formatter": "server", "filters": ["redact_oauth_query"]},
        "console": {"class": "logging.StreamHandler", "filters": ["redact_oauth_query"]},
    },
    "loggers": {
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
        "django_bigoauth": {"handlers": ["console"], "level": env.str("BIGOAUTH_LOG_LEVEL", default="INFO")},
    },
}
