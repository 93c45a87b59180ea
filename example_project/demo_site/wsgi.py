"""WSGI entry point of the demo site (``gunicorn demo_site.wsgi``, run from example_project/)."""

import os

from demo_site.paths import add_repository_to_path

add_repository_to_path()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
