"""The configuration variables of incidents (see mrdj/declarations.py)."""

from __future__ import annotations

from mrdj.declarations import Kind, Variable, declare
from mrdj.variables import INCIDENTS

declare(
    Variable(
        "INCIDENT_COMMANDER_DEADLINE_MS",
        Kind.MS,
        "600000",
        "A critical incident without an Incident Commander after this long is reminded, again every as long.",
        INCIDENTS,
        minimum=1,
    ),
    Variable(
        "INCIDENT_UPDATE_CADENCE_MS",
        Kind.MS,
        "900000",
        "A DR incident needs a status update at least this often.",
        INCIDENTS,
        minimum=1,
    ),
    Variable(
        "INCIDENT_PRODUCT_OWNER_AFTER_MS",
        Kind.MS,
        "1800000",
        "Customer impact (an open incident) lasting this long: bring in the Product Owner.",
        INCIDENTS,
        minimum=1,
    ),
    Variable(
        "INCIDENT_NORMALISED_MS",
        Kind.MS,
        "600000",
        "Post-alert checklist: alerts count as normalised after no new alert event for this long.",
        INCIDENTS,
        minimum=1,
    ),
    Variable(
        "INCIDENT_JIRA_CHECK_MS",
        Kind.MS,
        "60000",
        "How often the incident's Jira tickets are checked once its alerts have resolved.",
        INCIDENTS,
        minimum=1,
    ),
    Variable(
        "ALERT_DR_BRIDGE_WEBHOOK_URL",
        Kind.URL,
        "",
        "DR bridge: a Slack Workflow Builder webhook trigger (https://hooks.slack.com/triggers/...) "
        "started once per incident when the DR plan activates (or by the Create DR Bridge button), with "
        "the variables of docs/incidents.md. Secret. Empty: no bridge.",
        INCIDENTS,
        secret=True,
    ),
    Variable("INCIDENT_COMMS_HANDLE", Kind.TEXT, "@comms-duty", "Who posts status updates.", INCIDENTS),
    Variable("INCIDENT_PRODUCT_OWNER_HANDLE", Kind.TEXT, "@po-duty", "The Product Owner on duty.", INCIDENTS),
    Variable(
        "INCIDENT_DOSSIER_DIR",
        Kind.TEXT,
        "",
        "The incident folder (playbook: /share/incidents); when set, the dossier goes to "
        "<dir>/<incident reference>/ on resolution and with incident_export.",
        INCIDENTS,
    ),
)
