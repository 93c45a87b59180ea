from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BigOAuthConfig(AppConfig):
    name = "django_bigoauth"
    verbose_name = _("Linked OAuth accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers the system checks and the setting_changed receiver.
        from . import checks, conf  # noqa: F401
