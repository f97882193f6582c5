from django.urls import path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("incidents/<int:incident_id>/export", views.export, name="export"),
]
