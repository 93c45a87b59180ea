"""Placeholder: the authorisation-code views are built in issue 3."""

from django.http import HttpResponse


def accounts(request):
    return HttpResponse("")


authorise = callback = disconnect = accounts
