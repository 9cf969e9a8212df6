from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.people_views import LoginView
from scheduler.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("scheduler.api.urls")),
    path("settings/", include("accounts.urls")),
    path("", include("accounts.public_urls")),
    path("", include("scheduler.urls")),
]
