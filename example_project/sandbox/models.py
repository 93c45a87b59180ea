"""No models of its own: the sandbox uses django-oauth-toolkit's.

This module exists because Django only sends ``post_migrate`` to apps that have one, and the
sandbox creates its OAuth application on that signal.
"""
