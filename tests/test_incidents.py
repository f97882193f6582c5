"""Incidents follow the alerts: opened by a critical alert or the DR trigger, joined by later alerts,
reminders at the playbook's deadlines, the checklist, resolving. Time is moved by passing now."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from alerting import alert_actions
from alerting import lifecycle as alerting
from alerting.evaluation import Condition
from alerting.models import Alert, Kind, Notification, Severity
from incidents import checklist, deadlines, incident_actions, tracking
from incidents.incident_actions import IncidentError
from incidents.models import Entry, Incident, Lease, Role
from incidents.timing import Timing
from integrations.models import Status
from mrdj.models import AuditEvent
from tests.conftest import wait_until
from tests.support import csrf_client, put_jobs, staff
from tests.test_alert_lifecycle import clear_queue

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = timedelta(minutes=1)


def reminders() -> list[Notification]:
    return list(Notification.objects.filter(event=Notification.Event.INCIDENT).order_by("pk"))


def only_incident() -> Incident:
    assert Incident.objects.count() == 1
    return Incident.objects.get()


def critical_on(queue: str, now) -> Incident:
    put_jobs(queue, Status.PENDING, 4)
    alerting.tick(now)
    return Incident.objects.get(alerts__queue=queue, alerts__state="firing")


def test_a_critical_alert_opens_one_incident(hooks):
    t0 = timezone.now()
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(t0)
    assert Incident.objects.count() == 0  # a warning alone is no incident
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(t0 + MINUTE)
    alerting.tick(t0 + 2 * MINUTE)
    incident = only_incident()
    alert = Alert.objects.get(kind=Kind.BACKLOG)
    assert incident.severity == "critical" and incident.state == "open"
    assert incident.queues == ["rentguy"]
    assert incident.opened_at == t0 + MINUTE == incident.critical_at  # when it went critical
    assert list(incident.alerts.all()) == [alert]
    opened = incident.entries.get(kind=Entry.Kind.OPENED)
    assert opened.text == f"Opened by mrdj: alert {alert.pk} (critical backlog on rentguy) went critical."
    # Named after the day it opened where the team is (TIME_ZONE), not in UTC.
    assert incident.reference == f"INC-{timezone.localtime(incident.opened_at):%Y%m%d}-{incident.pk}"


def test_later_alerts_on_its_queues_join_it_and_other_queues_do_not(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    put_jobs("rentguy", Status.DEAD, 1)
    put_jobs("sevensa", Status.PENDING, 2)  # a warning on another queue
    alerting.tick(t0 + MINUTE)
    dead = Alert.objects.get(kind=Kind.DEAD_LETTER)
    sevensa = Alert.objects.get(queue="sevensa")
    assert set(incident.alerts.all()) == {Alert.objects.get(kind=Kind.BACKLOG, queue="rentguy"), dead}
    assert Incident.objects.count() == 1
    assert not sevensa.incidents.exists()
    assert incident.entries.filter(kind=Entry.Kind.JOINED, text__contains=f"alert {dead.pk}").exists()


def test_an_alert_about_every_queue_joins_the_open_incident_without_widening_it(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    silent = Condition("", Kind.TELEMETRY_SILENT, Severity.WARNING, {"figures": {}})
    backlog = Condition("rentguy", Kind.BACKLOG, Severity.CRITICAL, {"figures": {"backlog": 4}})
    alerting.tick(t0 + MINUTE, conditions=[backlog, silent])
    assert incident.alerts.filter(kind=Kind.TELEMETRY_SILENT).exists()
    sevensa = Condition("sevensa", Kind.BACKLOG, Severity.CRITICAL, {"figures": {"backlog": 4}})
    alerting.tick(t0 + 2 * MINUTE, conditions=[backlog, silent, sevensa])
    incident.refresh_from_db()
    assert incident.queues == ["rentguy"]
    assert Incident.objects.get(alerts__queue="sevensa").pk != incident.pk  # its own incident


def test_an_alert_never_joins_a_resolved_incident(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    Incident.objects.filter(pk=incident.pk).update(state=Incident.State.RESOLVED)
    late = Alert.objects.create(queue="rentguy", kind=Kind.DEAD_LETTER, severity="warning", started_at=t0)
    assert tracking.join(incident, late, t0) is False  # resolved between matching and joining
    critical = Condition("rentguy", Kind.RETRY_AGE, Severity.CRITICAL, {"figures": {}})
    alerting.tick(t0 + MINUTE, conditions=[critical])
    assert Incident.objects.exclude(pk=incident.pk).get().alerts.get().kind == Kind.RETRY_AGE


def test_the_dr_trigger_opens_an_incident_when_none_is_open(hooks):
    t0 = timezone.now()
    conditions = [
        Condition("rentguy", Kind.BACKLOG, Severity.WARNING, {"figures": {"backlog": 2}}),
        Condition("", Kind.TELEMETRY_SILENT, Severity.WARNING, {"figures": {}}),
    ]
    alerting.tick(t0, conditions=conditions)  # telemetry blind while an alert fires
    incident = only_incident()
    assert incident.severity == "critical"
    assert incident.dr_activated_at == t0
    assert "telemetry silent" in incident.dr_reason
    assert incident.title.startswith("DR plan activated: telemetry silent")
    assert incident.alerts.count() == 2
    assert incident.entries.filter(kind=Entry.Kind.DR).count() == 1


def test_the_dr_trigger_marks_the_open_incident_it_concerns(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    alerting.tick(t0 + 10 * MINUTE)  # critical for ALERT_DR_AFTER_MS
    alerting.tick(t0 + 11 * MINUTE)
    incident.refresh_from_db()
    assert Incident.objects.count() == 1
    assert incident.dr_activated_at == t0 + 10 * MINUTE
    assert "critical alert on rentguy" in incident.dr_reason


def test_evaluators_racing_open_one_incident_for_two_alerts_on_a_queue(hooks):
    t0 = timezone.now()
    figures = {"figures": {"backlog": 4, "retry_age_ms": 900_000}}
    alerting.tick(
        t0,
        conditions=[
            Condition("rentguy", Kind.BACKLOG, Severity.CRITICAL, figures),
            Condition("rentguy", Kind.RETRY_AGE, Severity.CRITICAL, figures),
        ],
    )
    Incident.objects.all().delete()  # as if the evaluation had died before linking
    assert Alert.objects.filter(state="firing", incident_link__isnull=True).count() == 2
    barrier = threading.Barrier(4)
    errors = []

    def link():
        from django.db import connection

        try:
            barrier.wait()
            tracking.sync(t0 + MINUTE)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=link) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    tracking.sync(t0 + MINUTE)  # whoever lost the lease links on the next evaluation: nothing left
    assert only_incident().alerts.count() == 2


def test_linking_waits_for_the_process_holding_the_lease_and_takes_over_when_it_ran_out(hooks):
    t0 = timezone.now()
    Lease.objects.create(name="link", held_until=timezone.now() + timedelta(seconds=30))  # another process
    critical_alert = Condition("rentguy", Kind.BACKLOG, Severity.CRITICAL, {"figures": {"backlog": 4}})
    alerting.tick(t0, conditions=[critical_alert])
    assert Incident.objects.count() == 0  # left to the holder
    Lease.objects.update(held_until=timezone.now() - timedelta(seconds=1))  # the holder died
    alerting.tick(t0 + MINUTE, conditions=[critical_alert])
    assert only_incident().alerts.count() == 1
    assert Lease.objects.get().held_until is None  # released after linking


def test_a_warning_no_incident_takes_does_not_take_the_lease_on_every_evaluation(hooks):
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(timezone.now())
    assert Alert.objects.filter(state="firing", incident_link__isnull=True).count() == 1
    assert not Lease.objects.exists()  # nothing could have taken it: no write per evaluation


def test_the_first_acknowledgement_makes_its_author_first_responder(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    alice = staff("acknowledge_alert")
    alert_actions.acknowledge(incident.alerts.get(), alice, now=t0 + MINUTE)
    role = incident.roles.get(name=Role.Name.FIRST_RESPONDER)
    assert (role.holder, role.user, role.since) == (alice.username, alice, t0 + MINUTE)


def test_no_incident_commander_after_ten_minutes_sends_a_reminder_until_one_is_claimed(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    alerting.tick(t0 + 9 * MINUTE)
    assert reminders() == []
    alerting.tick(t0 + 10 * MINUTE)
    [reminder] = reminders()
    assert reminder.severity == "critical"
    assert "No Incident Commander 10 min after going critical" in reminder.message
    assert reminder.content["dashboard_url"].endswith(f"/dashboard/incidents/{incident.pk}/")
    received = wait_until(lambda: [r.json() for r in hooks.to("/json") if r.json()["type"] == "reminder"])
    assert received[0]["runbook"].startswith("@ic-oncall: claim the Incident Commander role")
    alerting.tick(t0 + 15 * MINUTE)
    assert len(reminders()) == 1  # once per interval
    alerting.tick(t0 + 20 * MINUTE)
    assert len(reminders()) == 2  # still nobody: again
    incident_actions.claim_role(incident, Role.Name.COMMANDER, staff("change_incident"), now=t0 + 21 * MINUTE)
    alerting.tick(t0 + 40 * MINUTE)
    asked = [r for r in reminders() if "No Incident Commander" in r.message]
    assert len(asked) == 2
    assert (
        incident.entries.filter(kind=Entry.Kind.REMINDER, text__contains="No Incident Commander").count() == 2
    )


def test_a_dr_incident_needs_a_status_update_every_fifteen_minutes(hooks, managed_env):
    managed_env.set("INCIDENT_PRODUCT_OWNER_AFTER_MS", "86400000")
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    incident_actions.claim_role(incident, Role.Name.COMMANDER, staff("change_incident"), now=t0 + MINUTE)
    alerting.tick(t0 + 10 * MINUTE)  # DR trigger
    dr = t0 + 10 * MINUTE
    comms = staff("change_incident")
    incident_actions.add_note(
        incident, "RentGuy is slow; retries are holding", comms, now=dr + 5 * MINUTE, update=True
    )
    alerting.tick(dr + 19 * MINUTE)
    assert [r.content["type"] for r in reminders()] == ["update"]  # the update itself went out
    alerting.tick(dr + 20 * MINUTE)  # 15 minutes after the last update
    assert [r.content["type"] for r in reminders()] == ["update", "reminder"]
    assert "No status update for 15 min during the DR incident" in reminders()[-1].message
    assert "Communications Lead (@comms-duty)" in reminders()[-1].content["runbook"]
    incident_actions.claim_role(incident, Role.Name.COMMUNICATIONS, comms, now=dr + 21 * MINUTE)
    incident_actions.add_note(incident, "Upstream fixed; draining", comms, now=dr + 22 * MINUTE, update=True)
    alerting.tick(dr + 36 * MINUTE)
    assert len(reminders()) == 3  # the second update, no reminder
    alerting.tick(dr + 37 * MINUTE)
    assert reminders()[-1].content["type"] == "reminder"
    assert reminders()[-1].content["runbook"].startswith(f"{comms.username}: post a status update")


def test_the_product_owner_is_prompted_once_customer_impact_passes_thirty_minutes(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    incident_actions.claim_role(incident, Role.Name.COMMANDER, staff("change_incident"), now=t0 + MINUTE)
    alerting.tick(t0 + 29 * MINUTE)
    assert not [r for r in reminders() if "Product Owner" in r.content["runbook"]]
    alerting.tick(t0 + 30 * MINUTE)
    alerting.tick(t0 + 60 * MINUTE)
    prompts = [r for r in reminders() if "Customer impact has lasted" in r.message]
    assert len(prompts) == 1
    assert "@po-duty" in prompts[0].content["runbook"]


def test_a_filled_product_owner_role_is_not_prompted(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    incident_actions.claim_role(incident, Role.Name.COMMANDER, staff("change_incident"), now=t0 + MINUTE)
    incident_actions.claim_role(
        incident, Role.Name.PRODUCT_OWNER, staff("change_incident"), now=t0 + 2 * MINUTE
    )
    alerting.tick(t0 + 45 * MINUTE)
    assert reminders() == []


def test_reminders_go_to_the_critical_route_whatever_the_incident_severity(hooks, managed_env):
    managed_env.set("ALERT_SEVERITY_ROUTE", "critical:#dr-war-room")
    t0 = timezone.now()
    user = staff("add_incident")
    incident_actions.open_incident("Customers see old prices", "warning", ["sevensa"], user, now=t0)
    alerting.tick(t0 + 30 * MINUTE)
    [prompt] = reminders()
    assert prompt.severity == "critical"
    assert prompt.deliveries.filter(channel="#dr-war-room").exists()


def test_a_broken_incident_timing_still_opens_incidents(hooks, managed_env):
    managed_env.set("INCIDENT_COMMANDER_DEADLINE_MS", "ten minutes")
    critical_on("rentguy", timezone.now())  # linking needs no timing; the reminders wait for a fix
    assert Incident.objects.count() == 1


def test_timings_come_from_their_variables(hooks, managed_env):
    managed_env.update({"INCIDENT_COMMANDER_DEADLINE_MS": "60000"})
    t0 = timezone.now()
    critical_on("rentguy", t0)
    alerting.tick(t0 + MINUTE)
    assert "No Incident Commander 1 min after going critical" in reminders()[0].message


def test_an_incident_is_mitigated_when_its_alerts_resolve_and_open_again_when_one_fires(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    clear_queue("rentguy")
    alerting.tick(t0 + MINUTE)
    alerting.tick(t0 + 11 * MINUTE)  # clear for the quiet period: resolved
    incident.refresh_from_db()
    assert (incident.state, incident.mitigated_at) == ("mitigated", t0 + 11 * MINUTE)
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(t0 + 12 * MINUTE)  # a warning joins: no page, the incident stays mitigated
    alerting.tick(t0 + 14 * MINUTE)
    incident.refresh_from_db()
    assert incident.state == "mitigated" and incident.alerts.count() == 2
    assert incident.entries.filter(text__startswith="Stays mitigated: a warning does not reopen it").exists()
    assert reminders() == []  # no Incident Commander reminder to the war room for a warning
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(t0 + 15 * MINUTE)  # the warning goes critical: open again
    incident.refresh_from_db()
    assert incident.state == "open" and incident.alerts.count() == 2
    assert Incident.objects.count() == 1


def test_the_normalised_item_holds_once_no_alert_event_came_for_the_quiet_period(hooks, managed_env):
    managed_env.set("INCIDENT_NORMALISED_MS", str(30 * 60_000))
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)

    def normalised(now):
        state = next(s for s in checklist.states(incident, now, Timing.read()) if s.item.key == "normalised")
        return state.done, state.detail

    alert = incident.alerts.get()
    assert normalised(t0 + MINUTE) == (False, f"alert {alert.pk} still firing")
    clear_queue("rentguy")
    alerting.tick(t0 + MINUTE)
    alerting.tick(t0 + 11 * MINUTE)  # resolved
    assert normalised(t0 + 11 * MINUTE) == (False, "last alert event 11 min ago; holds after 30 min")
    assert normalised(t0 + 30 * MINUTE)[0] is True


def normalised_item(incident: Incident, now) -> tuple[bool, str]:
    state = next(s for s in checklist.states(incident, now, Timing.read()) if s.item.key == "normalised")
    return state.done, state.detail


def test_an_incident_opened_by_hand_is_not_normalised_while_an_alert_of_its_queue_fires(hooks):
    """The on-call report: opened by hand while a warning on its queue fired, not joined yet."""
    t0 = timezone.now()
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(t0)  # a warning: no incident takes it, so it stays unlinked
    alert = Alert.objects.get(queue="rentguy", state="firing")
    assert not alert.incidents.exists()
    incident = incident_actions.open_incident(
        "RentGuy slow", "warning", ["rentguy"], staff("add_incident"), now=t0 + MINUTE
    )
    assert normalised_item(incident, t0 + MINUTE) == (
        False,
        f"alert {alert.pk} (backlog on rentguy, not in this incident) still firing",
    )
    alerting.tick(t0 + MINUTE + timedelta(seconds=1))  # it joins
    assert list(incident.alerts.all()) == [alert]
    assert normalised_item(incident, t0 + 2 * MINUTE) == (False, f"alert {alert.pk} still firing")


def test_an_incident_without_alerts_waits_for_its_queues_to_be_quiet(managed_env):
    managed_env.set("INCIDENT_NORMALISED_MS", str(10 * 60_000))
    t0 = timezone.now()
    user = staff("add_incident")
    incident = incident_actions.open_incident("RentGuy slow", "warning", ["rentguy"], user, now=t0)
    everything = incident_actions.open_incident("Status page down", "warning", [], user, now=t0)
    assert normalised_item(incident, t0) == (True, "no alert of the incident or its queues has fired")

    other = Alert.objects.create(queue="sevensa", kind=Kind.BACKLOG, severity=Severity.WARNING, started_at=t0)
    assert normalised_item(incident, t0)[0] is True  # another queue's trouble
    assert normalised_item(everything, t0) == (
        False,
        f"alert {other.pk} (backlog on sevensa, not in this incident) still firing",
    )
    Alert.objects.filter(pk=other.pk).update(state=Alert.State.RESOLVED, resolved_at=t0 + MINUTE)

    redis = Alert.objects.create(
        queue="", kind=Kind.BROKER_UNREACHABLE, severity=Severity.CRITICAL, started_at=t0 + MINUTE
    )
    assert normalised_item(incident, t0 + MINUTE) == (
        False,
        f"alert {redis.pk} (broker unreachable on all queues, not in this incident) still firing",
    )
    Alert.objects.filter(pk=redis.pk).update(state=Alert.State.RESOLVED, resolved_at=t0 + 2 * MINUTE)

    # Resolved before it could join: the quiet period counts from its last event.
    Alert.objects.create(
        queue="rentguy",
        kind=Kind.BACKLOG,
        severity=Severity.WARNING,
        state=Alert.State.RESOLVED,
        started_at=t0 + 2 * MINUTE,
        resolved_at=t0 + 3 * MINUTE,
    )
    assert normalised_item(incident, t0 + 5 * MINUTE) == (
        False,
        "last alert event 3 min ago; holds after 10 min",
    )
    assert normalised_item(incident, t0 + 12 * MINUTE) == (True, "no new alert event for 10 min")


def test_the_checklist_items_are_numbered_one_to_n_in_order(hooks):
    assert [item.step for item in checklist.ITEMS] == list(range(1, len(checklist.ITEMS) + 1))
    incident = critical_on("rentguy", timezone.now())
    found = checklist.states(incident, timezone.now(), Timing.read())
    assert [state.item.key for state in found] == [item.key for item in checklist.ITEMS]
    steps = [message.split(":")[0] for message in checklist.missing(found)]
    assert steps == [f"step {number}" for number in range(1, 7)]
    client, _ = csrf_client(staff())
    page = client.get(f"/dashboard/incidents/{incident.pk}/").content.decode()
    for number in range(1, 7):
        assert page.count(f"<strong>{number}.</strong>") == 1, number


def test_the_jira_item_holds_once_every_ticket_is_resolved_with_the_root_cause_on_it(fake_jira, managed_env):
    managed_env.set("ALERT_JIRA_RESOLVE_TRANSITION", "Done")
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    alert = incident.alerts.get()
    wait_until(lambda: Alert.objects.get(pk=alert.pk).jira_key == "OPS-1", message="the Jira issue")

    def tickets_item():
        state = next(s for s in checklist.states(incident, t0, Timing.read()) if s.item.key == "tickets")
        return state.done, state.detail

    clear_queue("rentguy")
    alerting.tick(t0 + MINUTE)
    alerting.tick(t0 + 11 * MINUTE)  # resolved: Jira is told, and transitions the issue
    wait_until(lambda: Alert.objects.get(pk=alert.pk).jira_resolved_at, message="Jira told of the resolution")
    alerting.tick(t0 + 12 * MINUTE)  # the incident asks Jira about its ticket
    wait_until(
        lambda: incident.tickets.get().checked_at and incident.tickets.get().done, message="ticket checked"
    )
    assert tickets_item() == (False, "record the root cause")
    incident_actions.set_root_cause(
        incident, "RentGuy rotated its API key", staff("change_incident"), now=t0 + 13 * MINUTE
    )
    assert tickets_item()[0] is False  # not on the ticket yet
    alerting.tick(t0 + 14 * MINUTE)
    wait_until(
        lambda: fake_jira.comments.get("OPS-1", [])[-1:] and "rotated" in fake_jira.comments["OPS-1"][-1]
    )
    wait_until(lambda: tickets_item()[0], message="the tickets item")
    assert tickets_item() == (True, "OPS-1 resolved in Jira")
    assert fake_jira.comments["OPS-1"][-1].startswith(
        f"Root cause, recorded in mrdj for {incident.reference}:"
    )


def test_resolve_is_refused_naming_what_is_missing_then_accepted(hooks, managed_env, tmp_path):
    managed_env.set("INCIDENT_DOSSIER_DIR", str(tmp_path / "incidents"))
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    commander, other = staff("change_incident"), staff("change_incident")
    with pytest.raises(IncidentError) as refused:
        incident_actions.resolve(incident, commander, now=t0 + MINUTE)
    assert refused.value.problems[0] == (
        "Incident Commander: nobody holds the role; only the Incident Commander can resolve"
    )
    incident_actions.claim_role(incident, Role.Name.COMMANDER, commander, now=t0 + MINUTE)
    with pytest.raises(IncidentError) as refused:
        incident_actions.resolve(incident, other, now=t0 + 2 * MINUTE)
    assert (
        refused.value.problems[0]
        == f"Incident Commander: only {commander.username} can resolve {incident.reference}"
    )
    with pytest.raises(IncidentError) as refused:
        incident_actions.resolve(incident, commander, now=t0 + 2 * MINUTE)
    missing = refused.value.problems
    alert = incident.alerts.get()
    assert missing == [
        "step 1: Logs collected (queue worker, backend API, Redis) and uploaded to the incident folder "
        "(to be ticked by a person)",
        "step 2: Timeline, decisions and remaining risks documented (to be ticked by a person)",
        "step 3: Alerts normalised: no new alert events for the quiet period "
        f"(alert {alert.pk} still firing)",
        "step 4: Jira tickets resolved, with the root cause recorded (record the root cause)",
        "step 5: Status page and customer communication given their final update (to be ticked by a person)",
        "step 6: Post-mortem date set (to be ticked by a person)",
    ]
    clear_queue("rentguy")
    alerting.tick(t0 + 3 * MINUTE)
    alerting.tick(t0 + 13 * MINUTE)
    incident_actions.set_root_cause(incident, "a RentGuy outage", commander, now=t0 + 14 * MINUTE)
    for item in ("logs", "timeline", "status_page"):
        incident_actions.tick(incident, item, commander, now=t0 + 15 * MINUTE)
    with pytest.raises(IncidentError) as refused:
        incident_actions.tick(incident, "postmortem", commander, now=t0 + 15 * MINUTE, value="next week")
    assert refused.value.problems == ["date: give the post-mortem date as YYYY-MM-DD (got 'next week')"]
    incident_actions.tick(incident, "postmortem", commander, now=t0 + 15 * MINUTE, value="2026-12-03")
    assert Incident.objects.get(pk=incident.pk).state == "mitigated"
    written = incident_actions.resolve(incident, commander, now=t0 + 24 * MINUTE)
    incident.refresh_from_db()
    assert (incident.state, incident.resolved_by) == ("resolved", commander.username)
    folder = tmp_path / "incidents" / incident.reference
    assert written.paths == [str(folder / "dossier.md"), str(folder / "dossier.json")]
    assert (
        (folder / "dossier.md").read_text().startswith(f"# {incident.reference}: Critical backlog on rentguy")
    )
    with pytest.raises(IncidentError):
        incident_actions.add_note(incident, "too late", commander, now=t0 + 25 * MINUTE)


def test_a_dossier_that_cannot_be_written_does_not_undo_the_resolution(hooks, managed_env, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    managed_env.set("INCIDENT_DOSSIER_DIR", str(blocked))
    user = staff("add_incident", "change_incident")
    incident = incident_actions.open_incident("Status page down", "warning", [], user)
    incident_actions.claim_role(incident, Role.Name.COMMANDER, user)
    incident_actions.set_root_cause(incident, "hosting provider outage", user)
    for item in ("logs", "timeline", "status_page"):
        incident_actions.tick(incident, item, user)
    incident_actions.tick(incident, "postmortem", user, value="2026-12-03")
    written = incident_actions.resolve(incident, user)
    assert written.paths == [] and written.error.startswith(f"{blocked}: ")
    assert Incident.objects.get().state == "resolved"


def test_automatic_items_cannot_be_ticked_by_hand_and_bad_input_changes_nothing(hooks):
    incident = critical_on("rentguy", timezone.now())
    user = staff("change_incident")
    with pytest.raises(IncidentError, match="verified by mrdj itself"):
        incident_actions.tick(incident, "normalised", user)
    with pytest.raises(IncidentError, match="'bogus' is not a checklist item"):
        incident_actions.tick(incident, "bogus", user)
    with pytest.raises(IncidentError, match="role: 'boss' is not one of"):
        incident_actions.claim_role(incident, "boss", user)
    with pytest.raises(IncidentError, match="text: write something"):
        incident_actions.add_note(incident, "   ", user)
    with pytest.raises(IncidentError, match="title: one line, without control or invisible characters"):
        incident_actions.open_incident("Slow\n- [x] 5. Post-mortem date set", "warning", [], user)
    for title in [
        "Slow\x7f",
        "Slow\x85RentGuy",
        "Slow\u2028RentGuy",
        "Slow\u202e",
    ]:  # DEL, NEL, separator, bidi
        with pytest.raises(IncidentError, match="title: one line"):
            incident_actions.open_incident(title, "warning", [], user)
    with pytest.raises(IncidentError, match="text: without control characters"):
        incident_actions.add_note(incident, "upstream back\x00", user)
    with pytest.raises(IncidentError, match="root cause: without control characters"):
        incident_actions.set_root_cause(incident, "certificate\x00expired", user)
    with pytest.raises(IncidentError, match="value: one line"):
        incident_actions.tick(incident, "postmortem", user, value="2027-01-05\x00")
    with pytest.raises(IncidentError) as refused:
        incident_actions.open_incident("", "fatal", ["rentguy", "nope"], user)
    assert refused.value.problems == [
        "title: say what is wrong",
        "severity: 'fatal' is not one of warning, critical",
        "queues: unknown queue 'nope' (known: rentguy, sevensa)",
    ]
    incident.refresh_from_db()
    assert incident.checklist == {} and Incident.objects.count() == 1
    assert not AuditEvent.objects.filter(action__startswith="incident.").exists()


def test_a_taken_role_is_only_taken_over_explicitly_and_that_is_audited(hooks):
    incident = critical_on("rentguy", timezone.now())
    alice, bob = staff("change_incident"), staff("change_incident")
    incident_actions.claim_role(incident, Role.Name.COMMANDER, alice)
    with pytest.raises(IncidentError, match=f"{alice.username} is Incident Commander since"):
        incident_actions.claim_role(incident, Role.Name.COMMANDER, bob)
    incident_actions.claim_role(incident, Role.Name.COMMANDER, bob, take_over=True)
    assert incident_actions.commander(incident).holder == bob.username
    trail = AuditEvent.objects.filter(action="incident.role").order_by("pk")
    assert [event.actor for event in trail] == [alice.username, bob.username]
    assert incident.entries.filter(text__contains=f"taking over from {alice.username}").exists()


def test_an_incident_opened_by_hand_joins_alerts_on_its_queues(hooks):
    t0 = timezone.now()
    user = staff("add_incident")
    incident = incident_actions.open_incident(
        "RentGuy slow for customers", "warning", ["rentguy"], user, now=t0
    )
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(t0 + MINUTE)
    assert incident.alerts.count() == 1
    assert AuditEvent.objects.get(action="incident.open").target == incident.reference
    put_jobs("rentguy", Status.PENDING, 2)
    alerting.tick(t0 + 2 * MINUTE)  # the alert goes critical: so does the incident
    incident.refresh_from_db()
    assert (incident.severity, incident.critical_at) == ("critical", t0 + 2 * MINUTE)
    assert Incident.objects.count() == 1


def test_deadlines_stop_once_the_incident_is_mitigated(hooks):
    t0 = timezone.now()
    incident = critical_on("rentguy", t0)
    user = staff("change_incident")
    assert [d.name for d in deadlines.deadlines(incident, set(), Timing.read())] == [
        "commander",
        "product_owner",
    ]
    incident_actions.mitigate(incident, user, now=t0 + MINUTE)
    alerting.tick(t0 + 60 * MINUTE)
    assert reminders() == []


def test_a_broken_incident_timing_fails_the_system_check_naming_it(managed_env):
    from django.core import checks

    managed_env.set("INCIDENT_UPDATE_CADENCE_MS", "15min")
    warnings = [error.msg for error in checks.run_checks() if error.id == "mrdj.W001"]
    assert warnings == ["managed.env line 1: INCIDENT_UPDATE_CADENCE_MS='15min' is not a whole number"]


def test_the_dossier_reports_each_alert_at_its_worst_and_other_queues_actions_apart(hooks):
    from incidents import dossier
    from integrations import operations as queue_services
    from integrations.models import Job
    from integrations.queues import QUEUES

    t0 = timezone.now()
    incident = critical_on("rentguy", t0)  # 4 waiting: critical
    Job.objects.filter(
        pk__in=list(Job.objects.filter(queue="rentguy").values_list("pk", flat=True))[:2]
    ).update(status=Status.DONE)
    queue_services.recount()
    alerting.tick(t0 + MINUTE)  # 2 waiting: down to warning
    queue_services.flush(QUEUES["rentguy"], "cli:on-call")
    queue_services.flush(QUEUES["sevensa"], "cli:someone-else")
    clear_queue("rentguy")
    alerting.tick(t0 + 2 * MINUTE)
    alerting.tick(t0 + 13 * MINUTE)  # resolved

    markdown = dossier.as_markdown(dossier.as_data(incident))

    alert = Alert.objects.get(queue="rentguy", kind=Kind.BACKLOG)
    assert f"### Alert {alert.pk}: critical backlog on rentguy" in markdown  # not its last severity
    assert (
        "- At its worst: critical, backlog 4, active 0, retry_age_ms 0, dead_letter 0, oldest_pending"
        in markdown
    )
    assert f"Fired: alert {alert.pk} (backlog on rentguy), critical at its worst" in markdown
    ours, _, elsewhere = markdown.partition("On other queues meanwhile:")
    assert "queue.flush rentguy" in ours.split("## Operator actions")[1]
    assert "queue.flush sevensa" in elsewhere.split("## Alerts")[0]
