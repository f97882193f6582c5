from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from alerting import alert_actions, slack_actions
from alerting.models import Alert
from mrdj.api import BadRequest, json_error, read_body
from mrdj.auth import token_or_staff

MAX_SLACK_BODY_BYTES = 64 * 1024


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
    first = alert_actions.acknowledge(alert, request.actor)
    return JsonResponse({**describe(alert), "acknowledged_now": first})


@csrf_exempt
@require_POST
def slack_action(request: HttpRequest) -> HttpResponse:
    """Slack's interactivity request URL: signed by Slack, answered at once (Slack allows 3 s);
    the message itself is updated through the interaction's response_url."""
    try:
        body = read_body(request, MAX_SLACK_BODY_BYTES)
        slack_actions.verify(
            body,
            request.headers.get("X-Slack-Request-Timestamp", ""),
            request.headers.get("X-Slack-Signature", ""),
        )
        interaction = slack_actions.parse(body)
    except slack_actions.Forged as problem:
        return json_error(str(problem), 401)
    except BadRequest as problem:
        return json_error(str(problem), problem.status)
    if interaction is not None:
        slack_actions.respond_later(interaction.response_url, slack_actions.act(interaction))
    return HttpResponse(status=200)
