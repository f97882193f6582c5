from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from alerting import services
from alerting.models import Alert
from mrdj.auth import token_or_staff


def describe(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "queue": alert.queue,
        "kind": alert.kind,
        "severity": alert.severity,
        "state": alert.state,
        "started_at": alert.started_at.isoformat(),
        "acknowledged_by": alert.acknowledged_by_name or None,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "jira_key": alert.jira_key or None,
    }


@require_POST
@token_or_staff("OPS_API_TOKEN", permission="alerting.acknowledge_alert")
def acknowledge(request: HttpRequest, alert_id: int) -> JsonResponse:
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        return JsonResponse({"error": f"no alert with id {alert_id}"}, status=404)
    if not alert.firing:
        return JsonResponse({"error": f"alert {alert_id} is resolved; nothing to acknowledge"}, status=409)
    first = services.acknowledge(alert, request.actor)
    return JsonResponse({**describe(alert), "acknowledged_now": first})
