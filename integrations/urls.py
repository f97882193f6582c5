from django.urls import path

from integrations import views

app_name = "integrations"
urlpatterns = [
    path("integrations/sevensa/export", views.sevensa_export, name="sevensa-export"),
    path("integrations/<str:queue>/jobs", views.intake, name="intake"),
    path("integrations/<str:queue>/flush", views.flush, name="flush"),
    path("integrations/<str:queue>/deadletter/replay", views.replay, name="replay"),
    path("metrics/queues", views.queue_metrics, name="metrics"),
    path("metrics", views.prometheus_metrics, name="prometheus"),
]
