from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = _("Sandbox provider")

    def ready(self) -> None:
        # After every migrate, so that a fresh database can be used at once.
        post_migrate.connect(_ensure_application, sender=self)


def _ensure_application(*, using: str = "default", **kwargs) -> None:
    from .application import ensure_application

    ensure_application(using=using)
