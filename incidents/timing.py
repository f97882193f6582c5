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
            commander=config.duration("INCIDENT_COMMANDER_DEADLINE_MS"),
            cadence=config.duration("INCIDENT_UPDATE_CADENCE_MS"),
            owner_after=config.duration("INCIDENT_PRODUCT_OWNER_AFTER_MS"),
            normalised=config.duration("INCIDENT_NORMALISED_MS"),
            jira_check=config.duration("INCIDENT_JIRA_CHECK_MS"),
            commander_handle=config.value("ALERT_ESCALATION_CRITICAL"),
            comms_handle=config.value("INCIDENT_COMMS_HANDLE"),
            owner_handle=config.value("INCIDENT_PRODUCT_OWNER_HANDLE"),
            dossier_dir=config.value("INCIDENT_DOSSIER_DIR"),
        )
