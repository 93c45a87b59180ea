"""The sandbox's one OAuth client: the demo site itself, registered from settings.

Idempotent: run after every ``migrate`` (``post_migrate``) and by ``demo_setup``, it creates the
application or brings an existing one in line with the settings (client secret, redirect URIs),
so changing ``SANDBOX_CLIENT_SECRET`` in ``.env`` needs no manual step.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import connections
from django.urls import NoReverseMatch, reverse
from django.utils.crypto import constant_time_compare
from oauth2_provider.models import get_application_model

logger = logging.getLogger(__name__)

SLUG = "sandbox"


def redirect_uris() -> list[str]:
    """Where the app's callback lives, on both loopback host names.

    No port: django-oauth-toolkit accepts any port on a loopback redirect URI (RFC 8252,
    section 7.3; ``ALLOW_LOCALHOST_LOOPBACK`` extends that to ``localhost``), so the demo and
    the browser test can serve the site on whichever port they like.
    """
    config = settings.BIGOAUTH["PROVIDERS"].get(SLUG, {})
    if config.get("REDIRECT_URI"):
        return [config["REDIRECT_URI"]]
    try:
        path = reverse("bigoauth:callback", kwargs={"provider": SLUG})
    except NoReverseMatch:
        path = f"/bigoauth/{SLUG}/callback/"
    return [f"http://127.0.0.1{path}", f"http://localhost{path}"]


def ensure_application(using: str = "default") -> tuple[object | None, bool]:
    """Create or update the sandbox application; ``(application, changed)``.

    Returns ``(None, False)`` when the sandbox provider is not configured.
    """
    config = settings.BIGOAUTH["PROVIDERS"].get(SLUG)
    if not config:
        return None, False
    Application = get_application_model()
    if Application._meta.db_table not in connections[using].introspection.table_names():
        return None, False  # django-oauth-toolkit's tables are not migrated (yet)
    wanted = {
        "name": settings.SANDBOX_APPLICATION_NAME,
        "client_type": Application.CLIENT_CONFIDENTIAL,
        "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
        "redirect_uris": " ".join(redirect_uris()),
        # The point of the demo is to see the consent page.
        "skip_authorization": False,
        # ID tokens signed with the sandbox's RSA key (sandbox/keys.py), checked against its key set.
        "algorithm": Application.RS256_ALGORITHM,
    }
    application = Application.objects.using(using).filter(client_id=config["CLIENT_ID"]).first()
    if application is None:
        application = Application(client_id=config["CLIENT_ID"], client_secret=config["CLIENT_SECRET"], **wanted)
        application.save(using=using)
        logger.info("Created the sandbox OAuth application %r", application.name)
        return application, True
    changed = [field for field, value in wanted.items() if getattr(application, field) != value]
    for field in changed:
        setattr(application, field, wanted[field])
    if not _secret_matches(application, config["CLIENT_SECRET"]):
        application.client_secret = config["CLIENT_SECRET"]
        changed.append("client_secret")
    if changed:
        application.save(using=using)
        logger.info("Updated the sandbox OAuth application (%s)", ", ".join(sorted(changed)))
    return application, bool(changed)


def _secret_matches(application, secret: str) -> bool:
    # Stored hashed by default (django-oauth-toolkit's hash_client_secret): compare, never read back.
    if application.hash_client_secret:
        return check_password(secret, application.client_secret)
    return constant_time_compare(secret, application.client_secret)
