"""Mounted at ``sandbox/`` by the demo site: ``o/`` is the OpenID Connect provider (issuer ``{site}/sandbox/o``)."""

from django.urls import include, path, re_path

from . import views

urlpatterns = [
    # Before django-oauth-toolkit's own: its document, with the revocation endpoint added.
    re_path(r"^o/\.well-known/openid-configuration/?$", views.DiscoveryView.as_view(), name="sandbox-discovery"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
