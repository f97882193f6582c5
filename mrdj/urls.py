from django.contrib import admin
from django.urls import include, path

from mrdj import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("integrations.urls")),
    path("", include("alerting.urls")),
    path("", include("personalization.urls")),
]
