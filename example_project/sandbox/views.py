"""The sandbox's one protected API endpoint."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from oauth2_provider.decorators import protected_resource


@require_GET
@protected_resource(scopes=["read"], advertise_metadata=True)
def me(request: HttpRequest) -> JsonResponse:
    """Who the bearer token belongs to: ``{"id": ..., "username": ...}``.

    A missing, expired or revoked token never gets here: django-oauth-toolkit answers 401 with
    a ``WWW-Authenticate: Bearer`` challenge (RFC 6750), which is what makes the app's API
    session force one refresh and retry.
    """
    user = request.resource_owner
    return JsonResponse({"id": user.pk, "username": user.get_username()})
