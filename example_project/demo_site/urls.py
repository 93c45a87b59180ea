from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    # Browsers ask for /favicon.ico on every page that names none (the admin's): the app's icon.
    path("favicon.ico", views.favicon),
    path("demo/accounts/<int:pk>/test/", views.test_connection, name="demo-test-connection"),
    path("demo/accounts/test-all/", views.test_all_connections, name="demo-test-all"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    # The app: connect, callback, the accounts page, disconnect.
    path("bigoauth/", include("django_bigoauth.urls")),
]

if settings.SANDBOX_ENABLED:
    # The stand-in provider: a real OAuth 2.0 authorisation server and its "who am I" API.
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
