"""``manage.py demo_setup``: the demo login, the sandbox's OAuth application and signing key, idempotently.

Run after ``migrate`` (``make demo`` does both, then ``runserver``). Safe to run again: it
changes nothing that is already right. An existing demo user keeps its password (setting it
again would sign its browsers out); ``--reset-password`` sets it back to ``demo``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from sandbox.application import ensure_application
from sandbox.keys import ensure_signing_key

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"  # noqa: S105 - the published demo login, for 127.0.0.1 only
DEFAULT_URL = "http://127.0.0.1:8000/"


def ensure_demo_user(*, reset_password: bool = False) -> tuple[object, bool]:
    """A superuser ``demo`` / ``demo``, so that both the site and the admin can be tried.

    The password is set when the user is created (or ``reset_password``), never otherwise:
    a new password hash ends every session of the user, so running this again while a
    browser is signed in would sign it out.
    """
    User = get_user_model()
    user, created = User.objects.get_or_create(**{User.USERNAME_FIELD: DEMO_USERNAME})
    user.is_staff = user.is_superuser = user.is_active = True
    if created or reset_password:
        user.set_password(DEMO_PASSWORD)
    user.save()
    return user, created


class Command(BaseCommand):
    help = "Create the demo login (demo/demo, a superuser), the sandbox OAuth application and its signing key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default=DEFAULT_URL, help="The URL to print for the site (default: %(default)s).")
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help=_("Set an existing demo user's password back to 'demo' (signs its browsers out)."),
        )

    def handle(self, *args, url: str, reset_password: bool, **options) -> None:
        _user, created = ensure_demo_user(reset_password=reset_password)
        login = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
        if created:
            self.stdout.write(_("Demo login created: %(username)s / %(password)s") % login)
        elif reset_password:
            self.stdout.write(
                self.style.WARNING(
                    _(
                        "Demo login reset: %(username)s / %(password)s (browsers signed in as %(username)s are "
                        "signed out)"
                    )
                    % login
                )
            )
        else:
            self.stdout.write(
                _("Demo login kept: %(username)s, password unchanged (--reset-password sets it back to %(password)s)")
                % login
            )
        application, changed = ensure_application()
        if settings.SANDBOX_ENABLED:
            path, created = ensure_signing_key(settings.SANDBOX_OIDC_KEY_FILE)
            if created:
                self.stdout.write(_("Sandbox signing key created in %(path)s (not in git).") % {"path": path})
        if application is None:
            self.stdout.write(_("The sandbox provider is off (SANDBOX_ENABLED), so it has no OAuth application."))
        elif changed:
            self.stdout.write(
                _("Sandbox OAuth application updated (client id %(id)s).") % {"id": application.client_id}
            )
        else:
            self.stdout.write(_("Sandbox OAuth application ready (client id %(id)s).") % {"id": application.client_id})
        providers = ", ".join(settings.BIGOAUTH["PROVIDERS"]) or _("none")
        self.stdout.write(_("Configured providers: %(providers)s.") % {"providers": providers})
        if created or reset_password:
            sign_in = _("Open %(url)s and sign in as %(username)s / %(password)s.")
        else:
            sign_in = _("Open %(url)s and sign in as %(username)s.")
        self.stdout.write(self.style.SUCCESS(sign_in % {"url": url, **login}))
