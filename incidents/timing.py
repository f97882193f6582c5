"""The incident timings of the playbook (sections 4, 5 and 7), each a variable in ms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mrdj.config import get_config


@dataclass(frozen=True)
class Timing:
    commander: timedelta  # critical without an Incident Commander: remind after this
    cadence: timedelta  # DR incident: a status update at least this often
    owner_after: timedelta  # customer impact past this: bring in the Product Owner
    normalised: timedelta  # no new alert event for this long: alerts normalised
    jira_check: timedelta  # how often to ask Jira about the incident's tickets
    commander_handle: str
    comms_handle: str
    owner_handle: str
    dossier_dir: str

    @classmethod
    def read(cls) -> Timing:
        config = get_config()
        return cls(
            commander=config.get_ms("INCIDENT_COMMANDER_DEADLINE_MS", 600_000, minimum=1),
            cadence=config.get_ms("INCIDENT_UPDATE_CADENCE_MS", 900_000, minimum=1),
            owner_after=config.get_ms("INCIDENT_PRODUCT_OWNER_AFTER_MS", 1_800_000, minimum=1),
            normalised=config.get_ms("INCIDENT_NORMALISED_MS", 600_000, minimum=1),
            jira_check=config.get_ms("INCIDENT_JIRA_CHECK_MS", 60_000, minimum=1),
            commander_handle=config.get_str("ALERT_ESCALATION_CRITICAL", "@ic-oncall"),
            comms_handle=config.get_str("INCIDENT_COMMS_HANDLE", "@comms-duty"),
            owner_handle=config.get_str("INCIDENT_PRODUCT_OWNER_HANDLE", "@po-duty"),
            dossier_dir=config.get_str("INCIDENT_DOSSIER_DIR"),
        )
