"""What the sandbox says about its users in ID tokens and at userinfo."""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator


class SandboxValidator(OAuth2Validator):
    # Every claim whatever the scopes (django-oauth-toolkit's documented switch): the demo asks
    # for "openid offline_access" only, and should still show the user's name.
    oidc_claim_scope = None

    def get_additional_claims(self, request):
        user = request.user
        claims = {"name": user.get_username(), "preferred_username": user.get_username()}
        if user.email:
            claims["email"] = user.email
        return claims
