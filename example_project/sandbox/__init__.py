"""A real OpenID Connect provider (django-oauth-toolkit) standing in for a provider.

It lets the demo run the whole flow offline and without credentials: discovery, authorise,
consent, callback, code exchange with PKCE, an RS256 ID token, two-minute access tokens,
refresh with rotation, userinfo, revoke. The demo site links it with ``ISSUER`` alone.
"""
