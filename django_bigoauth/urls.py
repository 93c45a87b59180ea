from django.urls import path

from . import views

app_name = "bigoauth"

urlpatterns = [
    path("", views.accounts, name="accounts"),
    path("<slug:provider>/authorise/", views.authorise, name="authorise"),
    path("<slug:provider>/callback/", views.callback, name="callback"),
    path("accounts/<int:pk>/disconnect/", views.disconnect, name="disconnect"),
]
