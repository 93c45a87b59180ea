from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BigOAuthConfig(AppConfig):
    name = "django_bigoauth"
    verbose_name = _("Linked OAuth accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers the system checks and the setting_changed receivers.
        from . import checks, conf, crypto, providers, transport  # noqa: F401
        from .store import register_independent_alias

        # The second connection that lets a refresh inside the caller's transaction commit on its own.
        register_independent_alias()
