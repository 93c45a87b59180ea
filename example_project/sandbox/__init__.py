"""A real OAuth 2.0 authorisation server (django-oauth-toolkit) standing in for a provider.

It lets the demo run the whole flow offline and without credentials: authorise, consent,
callback, code exchange with PKCE, two-minute access tokens, refresh with rotation, revoke,
and one protected "who am I" API endpoint.
"""
