"""Mounted at ``sandbox/`` by the demo site: ``o/`` is the authorisation server, ``api/`` the API."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/me", views.me, name="sandbox-me"),
]
