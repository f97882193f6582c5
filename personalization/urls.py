from django.urls import path

from personalization import views

app_name = "personalization"
urlpatterns = [
    path("webhooks/personalization", views.webhook, name="webhook"),
    path("api/personalization/<str:visitor_id>", views.visitor_profile, name="profile"),
]
