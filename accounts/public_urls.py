"""Pages outside settings: log in, first run, sign-up, invitation links, password reset."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import people_views

urlpatterns = [
    path("setup/", people_views.setup, name="setup"),
    path("signup/", people_views.signup, name="signup"),
    path("invite/<str:token>/", people_views.accept_invitation, name="accept_invitation"),
    path(
        "password-reset/",
        people_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html",
            success_url=reverse_lazy("password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
]
