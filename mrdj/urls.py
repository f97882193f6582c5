from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from mrdj import views

handler404 = views.not_found
handler500 = views.server_error
urlpatterns = [
    # Browsers ask for it on every page, the admin's included.
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/icon.svg"), permanent=True)),
    path("", RedirectView.as_view(pattern_name="dashboard:queues"), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("", include("integrations.urls")),
    path("", include("alerting.urls")),
    path("", include("incidents.urls")),
    path("", include("personalization.urls")),
]
