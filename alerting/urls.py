from django.urls import path

from alerting import views

app_name = "alerting"
urlpatterns = [
    path("alerts/<int:alert_id>/ack", views.acknowledge, name="ack"),
]
