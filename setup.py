import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# Read, not imported: importing the package would need Django before it is installed.
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "django_bigoauth" / "__init__.py").read_text(), re.M)[1]

setup(
    name="django-bigoauth",
    version=VERSION,
    description="Link Biggerplate and Bigin (Zoho) accounts to a Django site, keep their tokens encrypted "
    "and always fresh.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    # PEP 639: an SPDX expression and the licence file, instead of a "License ::" classifier.
    license_expression="MIT",
    license_files=["LICENSE"],
    # The project root is the package root: a plain path entry for editable installs, where the
    # default (a finder for each package) warns that folders here could shadow the package.
    package_dir={"": "."},
    packages=find_packages(include=["django_bigoauth", "django_bigoauth.*"]),
    # Listed, not include_package_data: that reads MANIFEST.in and warns that the template and
    # static folders look like packages absent from `packages`. MANIFEST.in is for the sdist.
    package_data={
        "django_bigoauth": [
            "templates/**/*.html",
            "static/**/*",
            "locale/*/LC_MESSAGES/*.po",
            "locale/*/LC_MESSAGES/*.mo",
            # PEP 561: the package's own annotations are its types (mypy, pyright).
            "py.typed",
        ]
    },
    zip_safe=False,
    python_requires=">=3.10",
    install_requires=[
        "django>=4.2",
        "requests-oauthlib>=1.3",
        # Imported directly, not only through requests-oauthlib: requests by client.py and
        # session.py (2.31 fixed a Proxy-Authorization leak on redirects, CVE-2023-32681),
        # oauthlib by state.py for PKCE (Client.create_code_verifier is new in 3.2).
        "requests>=2.31",
        # Imported directly by transport.py: the connection classes that report their sockets
        # to the deadline watchdog.
        "urllib3>=2",
        "oauthlib>=3.2",
        "cryptography>=41",
        # idtoken.py: OpenID Connect ID tokens (JWS signatures, exp/iat/aud/iss) are checked by a
        # well-kept JOSE library, not by hand. PyJWT rather than joserfc or jwcrypto: the most used
        # (django-allauth's OpenID Connect provider uses it too), it refuses alg "none" unless told
        # otherwise, and its "crypto" extra is the cryptography package we already need (RS*, PS*,
        # ES*, EdDSA).
        "PyJWT[crypto]>=2.8",
        # Imported directly by the async API (sync_to_async runs refreshes off the event loop);
        # Django depends on it too.
        "asgiref>=3.6",
    ],
    extras_require={
        "example": [
            "django-environ>=0.11",
            "django-oauth-toolkit>=2.3",
            "httpx>=0.27",  # its "Test all connections" view uses asession()
            "sniffio>=1.3",  # as in "async"
        ],
        # The async API (aget_access_token, asession, ...): asession() is an httpx.AsyncClient.
        # sniffio: httpcore imports it on every request to tell asyncio from trio, and anyio no
        # longer brings it; missing, each request pays a failed import's search of sys.path
        # (a fifth of the client's CPU, profiled in benchmarks/bench_async.py's gathered calls).
        "async": ["httpx>=0.27", "sniffio>=1.3"],
        "postgres": ["psycopg[binary]>=3.1"],
        # Not in "dev": it builds from source against libmariadb-dev and needs pkg-config, which a
        # fresh machine lacks, and `make test` must work there (on SQLite). `make test-mariadb` adds it.
        "mysql": ["mysqlclient>=2.2"],
        # `make docs`: the Sphinx site in docs/ (furo, its theme; myst-parser reads the Markdown pages;
        # httpx because autodoc imports the async session). Repeated in "dev" below, which `make`
        # installs (tests/test_packaging.py checks that "dev" holds these).
        "docs": ["sphinx>=7.2", "furo>=2024.8.6", "myst-parser>=3", "httpx>=0.27"],
        "dev": [
            "django-environ>=0.11",
            "django-oauth-toolkit>=2.3",
            "pytest>=8",
            "pytest-django>=4.8",
            "pytest-timeout>=2.3",
            "pytest-asyncio>=0.24",
            "httpx>=0.27",
            "sniffio>=1.3",
            # Serves the example project over ASGI in the tests of its async view.
            "uvicorn>=0.30",
            "responses>=0.25",
            "hypothesis>=6.100",
            "playwright>=1.40",
            "psycopg[binary]>=3.1",
            "build>=1.0",
            # license_expression (PEP 639) needs 77; the no-isolation build test uses this one.
            "setuptools>=77",
            "twine>=6.1",
            "wheel",
            "ruff>=0.5",
            # `make lint`: the layering contract in .importlinter
            "import-linter>=2.1",
            # `make lint`: mypy with django-stubs (mypy.ini). The stubs follow Django's version:
            # 5.2.x for Django 5.2, whose plugin also checks against 4.2 (tox -e typecheck-django42);
            # mypy stays in the range those stubs were released for.
            "django-stubs>=5.2.9,<5.3",
            "mypy>=1.13,<1.20",
            "types-requests",
            "types-oauthlib",
            "types-requests-oauthlib",
            "tox>=4",
            # `make docs`, as in the "docs" extra
            "sphinx>=7.2",
            "furo>=2024.8.6",
            "myst-parser>=3",
        ],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 4.2",
        "Framework :: Django :: 5.2",
        "Intended Audience :: Developers",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
