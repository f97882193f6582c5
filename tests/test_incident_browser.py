"""One incident from critical alert to resolved, walked in Chromium; screenshots under test-screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerting import lifecycle as alerting
from incidents.models import Incident
from integrations.models import Status
from tests.support import put_jobs
from tests.test_alert_lifecycle import clear_queue
from tests.test_dashboard_browser import log_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.browser_timezone("America/New_York"),  # an operator far from the server's Amsterdam
]


def test_an_incident_walked_from_critical_alert_to_resolved(browser_page, webhooks, managed_env):
    managed_env.update(
        {
            "ALERT_QUEUE_WARNING_BACKLOG": "2",
            "ALERT_QUEUE_CRITICAL_BACKLOG": "4",
            "ALERT_RESOLVE_QUIET_MS": "1",
            "INCIDENT_NORMALISED_MS": "1",
        }
    )
    put_jobs("rentguy", Status.PENDING, 4)
    alerting.tick(timezone.now() - timedelta(minutes=12))  # critical for 12 minutes, no commander
    incident = Incident.objects.get()
    alert = incident.alerts.get()
    page = browser_page.page
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(browser_page)

    banner = page.locator("[data-incident-banner]")
    assert f"{incident.reference} open: Critical backlog on rentguy" in " ".join(banner.inner_text().split())
    browser_page.screenshot("1-banner")
    banner.click()
    page.wait_for_url(re.compile(rf"/dashboard/incidents/{incident.pk}/$"))
    overdue = page.locator("[data-deadline]").filter(has_text="Incident Commander")
    assert "overdue by" in overdue.inner_text()
    opened = page.locator("time[data-local]").first
    # One zone for everyone, named: TIME_ZONE (Amsterdam), even for a browser in New York,
    # so that pages, forms, chat messages and the dossier agree; then how long ago.
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET", opened.inner_text()), opened.inner_text()
    assert re.fullmatch(
        r"\s*\(\d+ (s|min \d+ s) ago\)", opened.locator("xpath=following-sibling::span[1]").inner_text()
    )
    browser_page.screenshot("2-critical")

    browser_page.goto("/dashboard/alerts/")
    page.click(f"#alert-{alert.pk} button")
    page.wait_for_selector(f"#flash .msg:has-text('first responder for alert {alert.pk}')")
    browser_page.goto(f"/dashboard/incidents/{incident.pk}/")
    assert page.locator("[data-role=first_responder] td").first.inner_text().startswith("ops-lead, since")
    page.click("[data-role=commander] button")
    page.wait_for_selector("#flash .msg:has-text('You are Incident Commander')")
    assert not page.locator("[data-deadline]").filter(has_text="Incident Commander").count()
    page.fill("textarea[name=text]", "RentGuy rejects our API key; renewing it now.")
    page.select_option("select[name=kind]", "update")
    page.click("form[action$='/note'] button")
    page.wait_for_selector("#flash .msg:has-text('Status update posted and sent.')")
    browser_page.screenshot("3-commander-and-update")

    clear_queue("rentguy")  # the key is renewed: the jobs go through
    alerting.tick()
    alerting.tick(timezone.now() + timedelta(seconds=1))  # clear for the quiet period
    browser_page.goto(f"/dashboard/incidents/{incident.pk}/")
    assert page.locator("[data-state]").inner_text() == "mitigated"
    page.fill("textarea[name=root_cause]", "The RentGuy API key expired.")
    page.click("form[action$='/root-cause'] button")
    page.wait_for_selector("#flash .msg:has-text('Root cause recorded')")
    for item in ("logs", "timeline", "status_page"):
        page.click(f"[data-item={item}] button")
        page.wait_for_selector(f"[data-item={item}].done")
    page.fill("[data-item=postmortem] input[type=date]", "2026-12-03")
    page.click("[data-item=postmortem] button")
    page.wait_for_selector("[data-item=postmortem].done")
    assert page.locator(".checklist li.done").count() == 6
    browser_page.screenshot("4-checklist-complete")

    page.click("form[action$='/resolve'] button")
    page.wait_for_selector(f"#flash .msg:has-text('{incident.reference} is resolved.')")
    assert not page.locator("[data-incident-banner]").count()
    assert Incident.objects.get().state == "resolved"
    browser_page.screenshot("5-resolved")
    timeline = page.locator("table.timeline").inner_text()
    assert "ops-lead is Incident Commander." in timeline and "Resolved by ops-lead" in timeline

    dossier = page.request.get(f"{browser_page.base_url}/incidents/{incident.pk}/export").text()
    assert dossier.startswith(f"# {incident.reference}: Critical backlog on rentguy")
    assert browser_page.errors == []
