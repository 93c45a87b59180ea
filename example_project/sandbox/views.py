"""The sandbox's discovery document: django-oauth-toolkit's, plus its revocation endpoint.

oidc-provider, Keycloak and Google publish ``revocation_endpoint`` (RFC 7009, registered for
discovery documents by RFC 8414) in their OpenID Connect discovery document too, so the app
finds where to revoke from the issuer alone; django-oauth-toolkit puts it only in its RFC 8414
document, so the sandbox adds it here.
"""

from __future__ import annotations

import json

from oauth2_provider.views import ConnectDiscoveryInfoView


class DiscoveryView(ConnectDiscoveryInfoView):
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        data["revocation_endpoint"] = self._get_endpoint_url(request, "revoke-token", required=True)
        response.content = json.dumps(data)
        return response
