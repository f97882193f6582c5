from django.urls import path

from alerting import pagerduty_webhook, views

app_name = "alerting"
urlpatterns = [
    path("alerts/<int:alert_id>/ack", views.acknowledge, name="ack"),
    path("integrations/pagerduty/webhook", pagerduty_webhook.receive, name="pagerduty-webhook"),
    path("integrations/slack/actions", views.slack_action, name="slack-actions"),
]
