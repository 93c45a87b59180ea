"""ASGI entry point of the demo site (``uvicorn demo_site.asgi:application``, run from example_project/).

``make demo`` serves the site with runserver, which runs the async view ("Test all connections")
too; under an ASGI server that view's requests share one event loop.
"""

import os

from demo_site.paths import add_repository_to_path

add_repository_to_path()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

import logging  # noqa: E402

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from demo_site.logfilters import RedactOAuthQuery  # noqa: E402

application = get_asgi_application()
# uvicorn's request log prints every query string, a callback's code and state included: mask
# them as the settings do for runserver's log (a filter on the logger outlives uvicorn's own
# logging setup, which runs before this module is imported).
logging.getLogger("uvicorn.access").addFilter(RedactOAuthQuery())
if settings.DEBUG:
    # As runserver does: the demo's few static files without a separate server.
    application = ASGIStaticFilesHandler(application)
