"""The configuration variables of incidents (see mrdj/declarations.py)."""

from __future__ import annotations

import re

from integrations.queues import QUEUES
from mrdj.declarations import ConfigError, Kind, Variable, declare
from mrdj.variables import INCIDENTS

COMPONENT_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # Statuspage's ids: 12 lowercase letters and digits


def status_page_components(entries: list[str]) -> dict[str, list[str]]:
    """STATUSPAGE_COMPONENTS as queue: its Statuspage component ids; ConfigError naming the
    entry that is not queue:component_id with a known queue."""
    components: dict[str, list[str]] = {}
    for number, entry in enumerate(entries, 1):
        where = f"STATUSPAGE_COMPONENTS entry {number} ({entry[:80]!r})"
        queue, colon, component = (part.strip() for part in entry.partition(":"))
        if not colon or not COMPONENT_ID.fullmatch(component):
            raise ConfigError(f"{where} must be queue:component_id, such as rentguy:8kbf7d35c070")
        if queue not in QUEUES:
            raise ConfigError(f"{where} names an unknown queue {queue!r} (known: {', '.join(QUEUES)})")
        components.setdefault(queue, [])
        if component not in components[queue]:
            components[queue].append(component)
    return components


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
    Variable(
        "STATUSPAGE_PAGE_ID",
        Kind.TEXT,
        "",
        "Status page: the Atlassian Statuspage page ID (such as 0ypqjmkwgqmh) that status updates can "
        "be published on (with STATUSPAGE_API_KEY). Empty: no publishing.",
        INCIDENTS,
    ),
    Variable(
        "STATUSPAGE_API_KEY",
        Kind.TEXT,
        "",
        "Status page: an API key of a Statuspage user who may manage incidents on the page. Secret.",
        INCIDENTS,
        secret=True,
    ),
    Variable(
        "STATUSPAGE_API_URL",
        Kind.URL,
        "https://api.statuspage.io/v1",
        "Status page: Statuspage's REST API.",
        INCIDENTS,
    ),
    Variable(
        "STATUSPAGE_COMPONENTS",
        Kind.LIST,
        "",
        "Status page: queue:component_id pairs; the components of an incident's queues are marked "
        "major_outage (critical) or degraded_performance (warning), operational on the final update.",
        INCIDENTS,
        example="rentguy:8kbf7d35c070,sevensa:1k3nr2f4dnm",
        check=status_page_components,
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
