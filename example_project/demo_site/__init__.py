"""The django_bigoauth demo site: settings, URLs, a home page that tests linked accounts."""
