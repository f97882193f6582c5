"""The incident dossier: one Markdown document (or JSON) with the summary, roles, timeline, alert
payloads, operator actions and checklist, for the incident folder of playbook section 7
(/share/incidents/<incident-id>); written there when INCIDENT_DOSSIER_DIR is set."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone

from incidents import checklist, timeline
from incidents.models import Incident, Role
from incidents.timing import Timing
from integrations.queues import QUEUES
from mrdj.times import human_delta, shown


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def as_data(incident: Incident, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    timing = Timing.read()
    held = {role.name: role for role in incident.roles.all()}
    events = timeline.build(incident)
    alerts = list(incident.alerts.all())
    end = incident.resolved_at or now  # a resolved incident is described as it was declared resolved
    return {
        "reference": incident.reference,
        "id": incident.pk,
        "title": incident.title,
        "severity": incident.severity,
        "state": incident.state,
        "queues": incident.queues,
        "opened_at": _iso(incident.opened_at),
        "opened_by": incident.opened_by,
        "mitigated_at": _iso(incident.mitigated_at),
        "resolved_at": _iso(incident.resolved_at),
        "resolved_by": incident.resolved_by,
        "duration": human_delta(end - incident.opened_at),
        "dr": {"activated_at": _iso(incident.dr_activated_at), "reason": incident.dr_reason}
        if incident.dr_activated_at
        else None,
        "root_cause": incident.root_cause,
        "jira": [
            {"key": ticket.key, "status": ticket.status, "resolved": ticket.done, "error": ticket.error}
            for ticket in incident.tickets.all()
        ],
        "roles": [
            {
                "role": name.label,
                "holder": held[name].holder if name in held else None,
                "since": _iso(held[name].since) if name in held else None,
            }
            for name in Role.Name
        ],
        "checklist": [
            {
                "step": state.item.step,
                "item": state.item.label,
                "done": state.done,
                "automatic": state.item.automatic,
                "detail": state.detail,
                "by": state.by,
                "at": _iso(state.at),
            }
            for state in checklist.states(incident, end, timing)
        ],
        "timeline": [event.as_dict() for event in events],
        "alerts": [
            {
                "id": alert.pk,
                "queue": alert.queue or "all queues",
                "kind": alert.kind,
                "severity": alert.severity,
                "state": alert.state,
                "started_at": _iso(alert.started_at),
                "resolved_at": _iso(alert.resolved_at),
                "first_responder": alert.acknowledged_by_name,
                "jira": alert.jira_key,
                "peak": alert.payload.get("peak") or {"severity": alert.severity, "figures": {}},
                "payload": alert.payload,
            }
            for alert in alerts
        ],
        "generated_at": now.isoformat(),
    }


def _line(text: Any) -> str:
    """Text from people or from Jira, kept on its line: it cannot start a heading or a list item."""
    return " ".join(str(text if text is not None else "").split())


def _cell(text: Any) -> str:
    """One Markdown table cell: pipes escaped, lines joined."""
    return _line(text).replace("|", "\\|") or "—"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _local(iso: str | None) -> str:
    return shown(datetime.fromisoformat(iso)) if iso else ""


PEAK_FIGURES = ("backlog", "active", "retry_age_ms", "dead_letter", "oldest_pending_age_ms")


def _concerns(text: str, queues: list[str]) -> bool:
    """An action on one of the incident's queues, or on no queue in particular (a flag, the
    configuration, the mode): 'queue.flush sevensa: ...' concerns only an incident on sevensa."""
    target = text.partition(" ")[2].partition(":")[0].split()
    queue = target[0] if target else ""
    return queue not in QUEUES or queue in queues or "" in queues


def as_markdown(data: dict[str, Any]) -> str:
    """Readable by a person first: summary, roles, checklist, then the timeline in order."""
    dr = data["dr"]
    jira = ", ".join(f"{t['key']} ({t['status'] or 'not checked'})" for t in data["jira"]) or "none"
    lines = [f"# {data['reference']}: {_line(data['title'])}", ""]
    lines += _table(
        ["", ""],
        [
            ["State", data["state"]],
            ["Severity", data["severity"]],
            ["Queues", ", ".join(q or "all queues" for q in data["queues"]) or "none"],
            ["Opened", f"{_local(data['opened_at'])} by {data['opened_by']}"],
            ["Mitigated", _local(data["mitigated_at"]) or "not yet"],
            [
                "Resolved",
                f"{_local(data['resolved_at'])} by {data['resolved_by']}"
                if data["resolved_at"]
                else "not yet",
            ],
            ["Duration", data["duration"]],
            ["DR plan", f"activated {_local(dr['activated_at'])}: {dr['reason']}" if dr else "not activated"],
            ["Jira", jira],
            ["Root cause", data["root_cause"] or "not recorded"],
        ],
    )
    lines += ["## Roles", ""]
    lines += _table(
        ["Role", "Who", "Since"],
        [[role["role"], role["holder"] or "vacant", _local(role["since"])] for role in data["roles"]],
    )
    lines += ["## Post-alert checklist (playbook section 7)", ""]
    for item in data["checklist"]:
        mark = "x" if item["done"] else " "
        who = f", {item['by']} at {_local(item['at'])}" if item["by"] else ""
        how = " (verified by mrdj)" if item["automatic"] else ""
        lines.append(f"- [{mark}] {item['step']}. {item['item']}{how}: {_line(item['detail'])}{_line(who)}")
    lines += ["", "## Timeline", ""]
    lines += _table(
        ["When", "What", "Who", "Delivery"],
        [[_local(e["at"]), f"{e['source']}: {e['text']}", e["actor"], e["detail"]] for e in data["timeline"]],
    )
    lines += ["## Operator actions", ""]
    actions = [
        e
        for e in data["timeline"]
        if e["source"] == "audit" or (e["source"] == "incident" and e["actor"] != "mrdj")
    ]
    ours = [e for e in actions if _concerns(e["text"], data["queues"])]
    lines += _table(["When", "Who", "What"], [[_local(e["at"]), e["actor"], e["text"]] for e in ours])
    elsewhere = [e for e in actions if e not in ours]
    if elsewhere:
        lines += ["On other queues meanwhile:", ""]
        lines += _table(
            ["When", "Who", "What"], [[_local(e["at"]), e["actor"], e["text"]] for e in elsewhere]
        )
    lines += ["## Alerts", ""]
    for alert in data["alerts"]:
        peak = alert["peak"]
        shown_figures = [(name, peak["figures"][name]) for name in PEAK_FIGURES if name in peak["figures"]]
        figures = ", ".join(f"{name} {value}" for name, value in shown_figures) or "no figures recorded"
        lines += [
            f"### Alert {alert['id']}: {peak['severity']} {alert['kind']} on {alert['queue']}",
            "",
            f"- Started {_local(alert['started_at'])}; "
            + (f"resolved {_local(alert['resolved_at'])}" if alert["resolved_at"] else "still firing"),
            f"- At its worst: {peak['severity']}, {figures}"
            + ("" if alert["resolved_at"] else f"; {alert['severity']} at the last evaluation"),
            f"- First responder: {_line(alert['first_responder']) or 'nobody acknowledged'}",
            f"- Jira: {alert['jira'] or 'none'}",
            "",
            "```json",
            json.dumps(alert["payload"], indent=2, sort_keys=True),
            "```",
            "",
        ]
    if not data["alerts"]:
        lines += ["No alert joined this incident.", ""]
    lines.append(f"_Generated by mrdj at {_local(data['generated_at'])}._")
    return "\n".join(lines) + "\n"


def as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write(incident: Incident, now: datetime | None = None) -> list[str]:
    """Both formats into INCIDENT_DOSSIER_DIR/<reference>/; each file replaced whole, never half-written."""
    folder = Path(Timing.read().dossier_dir) / incident.reference
    folder.mkdir(parents=True, exist_ok=True)
    data = as_data(incident, now)
    written = []
    for name, text in (("dossier.md", as_markdown(data)), ("dossier.json", as_json(data))):
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from the rest of the team
        os.replace(temporary, folder / name)
        written.append(str(folder / name))
    return written
