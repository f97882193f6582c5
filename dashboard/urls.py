from django.urls import path

from dashboard import config_views, incident_views, views

app_name = "dashboard"
urlpatterns = [
    path("", views.queues, name="queues"),
    path("queues.json", views.queues_json, name="queues-json"),
    path("queues/<str:queue>/flush", views.flush, name="flush"),
    path("queues/<str:queue>/replay", views.replay, name="replay"),
    path("mode", views.mode, name="mode"),
    path("flags/", views.flags, name="flags"),
    path("config/", config_views.config, name="config"),
    path("config/history/", config_views.history, name="config-history"),
    path("config/versions/<int:version_id>/rollback", config_views.rollback, name="config-rollback"),
    path("config/<str:name>", config_views.change, name="config-change"),
    path("config/<str:name>/test", config_views.probe, name="config-test"),
    path("flags/<str:name>", views.flag, name="flag"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:alert_id>/ack", views.acknowledge, name="ack"),
    path("silences", views.silence, name="silence"),
    path("silences/<int:silence_id>/expire", views.expire_silence, name="expire-silence"),
    path("test-alert", views.test_alert, name="test-alert"),
    path("health/", views.health, name="health"),
    path("readiness/", views.readiness, name="readiness"),
    path("audit/", views.audit, name="audit"),
    path("incidents/", incident_views.incidents, name="incidents"),
    path("incidents/open", incident_views.open_incident, name="incident-open"),
    path("incidents/<int:incident_id>/", incident_views.incident, name="incident"),
    path("incidents/<int:incident_id>/claim", incident_views.claim, name="incident-claim"),
    path("incidents/<int:incident_id>/note", incident_views.note, name="incident-note"),
    path("incidents/<int:incident_id>/checklist", incident_views.check, name="incident-checklist"),
    path("incidents/<int:incident_id>/root-cause", incident_views.root_cause, name="incident-root-cause"),
    path("incidents/<int:incident_id>/mitigate", incident_views.mitigate, name="incident-mitigate"),
    path("incidents/<int:incident_id>/resolve", incident_views.resolve, name="incident-resolve"),
]
