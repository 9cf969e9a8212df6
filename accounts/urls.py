from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import people_views, views

app_name = "accounts"

urlpatterns = [
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke_api_token, name="revoke_api_token"),
    path("workspace/", views.switch_workspace_view, name="switch_workspace"),
    path("members/", people_views.members, name="members"),
    path("members/<int:pk>/role/", people_views.change_role, name="change_role"),
    path("members/<int:pk>/remove/", people_views.remove_member, name="remove_member"),
    path("members/leave/", people_views.leave, name="leave"),
    path(
        "invitations/<int:pk>/<str:action>/",
        people_views.invitation_action,
        name="invitation_action",
    ),
    path("account/", people_views.account, name="account"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html",
            success_url=reverse_lazy("accounts:password_changed"),
        ),
        name="password_change",
    ),
    path(
        "password/changed/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_changed",
    ),
    path("workspaces/new/", people_views.new_workspace, name="new_workspace"),
]
