from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = _("Sandbox provider")

    def ready(self) -> None:
        # After every migrate, so that a fresh database can be used at once.
        post_migrate.connect(_ensure_application, sender=self)
        checks.register(check_signing_key)


def _ensure_application(*, using: str = "default", **kwargs) -> None:
    from .application import ensure_application

    ensure_application(using=using)


def check_signing_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Without its RSA key the sandbox cannot sign ID tokens, and every sign-in fails."""
    from django.conf import settings

    if settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY"):
        return []
    return [
        checks.Warning(
            _("The sandbox has no RSA key to sign its ID tokens with, so connecting it will fail."),
            hint=_("Run `python example_project/manage.py demo_setup` (make demo does), then restart the site."),
            id="sandbox.W001",
        )
    ]
