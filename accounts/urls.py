from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke_api_token, name="revoke_api_token"),
    path("workspace/", views.switch_workspace_view, name="switch_workspace"),
]
