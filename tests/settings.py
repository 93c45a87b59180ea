"""Settings for the test suite: SQLite by default, PostgreSQL or MariaDB/MySQL when DATABASE_URL says so."""

import os
from urllib.parse import urlsplit

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_bigoauth",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
LOGIN_URL = "/login/"
STATIC_URL = "/static/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _database_from_url(url):
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/") or "test",
            "USER": parts.username or "postgres",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
        }
    if parts.scheme in ("mysql", "mariadb"):
        # utf8mb4: MySQL's "utf8" holds no 4-byte characters; the test database gets it too,
        # whatever the server's default. The isolation level stays Django's default, READ
        # COMMITTED, as on PostgreSQL.
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": parts.path.lstrip("/") or "test",
            "USER": parts.username or "root",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 3306),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4"},
        }
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path or ":memory:"}


DATABASES = {"default": _database_from_url(os.environ.get("DATABASE_URL", "sqlite://"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

BIGOAUTH = {
    "PROVIDERS": {
        "biggerplate": {"CLIENT_ID": "bp-client", "CLIENT_SECRET": "bp-secret-value"},
        "bigin": {"CLIENT_ID": "1000.BIGIN", "CLIENT_SECRET": "bigin-secret-value", "DATA_CENTRE": "us"},
    },
    "ENCRYPTION_KEYS": ["ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="],
}
