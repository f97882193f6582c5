"""The on-call engineer's walk in a real browser, on a laptop (1280 px) and a phone (390 px):
a failing upstream → the card names the cause → the jobs of that cause → one job's tries →
edit and send again → delivered; replay of a cause group; charts with data and marks; the
red states; and axe-core's accessibility check of every page. Screenshots are saved under
test-screenshots/."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alerting.models import Alert
from incidents import incident_actions as incident_services
from integrations import history, operations
from integrations.models import Job, Status
from integrations.queues import QUEUES
from tests.conftest import TOKENS
from tests.processes import wait_until
from tests.receivers import Answer
from tests.support import put_jobs
from tests.test_dashboard_browser import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
WIDTHS = {"laptop": 1280, "phone": 390}


def accept_dialogs(page) -> list[str]:
    seen: list[str] = []

    def accept(dialog):
        seen.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return seen


def fits(browser_page, label: str) -> None:
    """Nothing is wider than the window (a wide element makes the page scroll sideways)."""
    page = browser_page.page
    page.wait_for_load_state("networkidle")
    width = page.evaluate("window.innerWidth")
    overflow = page.evaluate(
        """() => Array.from(document.querySelectorAll('body *'))
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && el.offsetParent)
            .slice(0, 5)
            .map(el => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, (label, overflow)
    browser_page.screenshot(label)


def intake(browser_page, payload: dict) -> int:
    answer = browser_page.page.request.post(
        browser_page.base_url + "/integrations/rentguy/jobs",
        data=json.dumps({"payload": payload}),
        headers={
            "Authorization": f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}",
            "Content-Type": "application/json",
        },
    )
    assert answer.status == 202, answer.text()
    return answer.json()["id"]


@pytest.mark.parametrize("device", WIDTHS)
def test_from_a_failing_upstream_to_the_job_delivered_after_a_fix(
    browser_page, inprocess_worker, upstream, device
):
    page = browser_page.page
    page.set_viewport_size({"width": WIDTHS[device], "height": 900})
    upstream.script(*[Answer(500, body=b'{"error": "email is invalid"}')] * 3)
    job_id = intake(browser_page, {"lead": "Bruiloft Jansen", "email": "jansen@example"})
    wait_until(lambda: Job.objects.get(pk=job_id).status == Status.DEAD, message="the job dead-letters")
    log_in(browser_page)
    dialogs = accept_dialogs(page)

    card = page.locator("#queue-rentguy")
    card.locator("[data-list=causes] li", has_text="HTTP 500 Internal Server Error (1 job)").wait_for()
    assert card.get_attribute("data-severity") in ("warning", "critical")
    fits(browser_page, f"{device}-1-card-names-the-cause")

    card.locator("a[data-dead-link]").click()
    page.locator("#causes a", has_text="HTTP 500 Internal Server Error").click()
    page.wait_for_url("**cause=HTTP*")
    assert page.locator("#jobs tbody tr").count() == 1
    fits(browser_page, f"{device}-2-jobs-of-the-cause")

    page.locator(f"#jobs a[href$='/jobs/{job_id}/']").click()
    tries = page.locator("#tries tbody tr")
    assert tries.count() == 3 and "email is invalid" in tries.first.inner_text()
    fits(browser_page, f"{device}-3-the-job-and-its-tries")

    fixed = json.dumps({"lead": "Bruiloft Jansen", "email": "jansen@example.org"}, indent=2)
    page.fill("#payload", fixed)
    page.click("form.edit button")
    page.wait_for_selector("#flash .msg:has-text('has the new payload and is back in the queue')")
    wait_until(
        lambda: Job.objects.get(pk=job_id).status == Status.DONE, message="the edited job is delivered"
    )
    page.reload()
    assert page.locator("[data-field=state]").inner_text() == "delivered"
    assert page.locator("pre.diff .add", has_text='"email": "jansen@example.org"').count() == 1
    assert upstream.received[-1].json() == {"lead": "Bruiloft Jansen", "email": "jansen@example.org"}
    assert dialogs == [f"Save this payload and send job {job_id} again?"]
    fits(browser_page, f"{device}-4-delivered-after-the-edit")
    assert browser_page.errors == []


def test_a_cause_group_is_replayed_at_once(browser_page, inprocess_worker, upstream):
    dead = put_jobs("rentguy", Status.DEAD, 3)
    Job.objects.filter(pk__in=dead[:2]).update(last_error="network error (could not connect)")
    Job.objects.filter(pk=dead[2]).update(last_error="HTTP 401 Unauthorized")
    log_in(browser_page)
    page = browser_page.page
    dialogs = accept_dialogs(page)
    browser_page.goto("/dashboard/queues/rentguy/jobs?state=dead")

    row = page.locator("#causes tr[data-cause]", has_text="network error")
    row.locator("button").click()
    page.wait_for_selector("#flash .msg:has-text('Replayed 2 dead-letter job(s)')")
    wait_until(lambda: Job.objects.filter(pk__in=dead[:2], status=Status.DONE).count() == 2)
    assert Job.objects.get(pk=dead[2]).status == Status.DEAD  # another cause: untouched
    assert dialogs == ["Replay the 2 job(s) that failed with network error (could not connect)?"]
    browser_page.screenshot("cause-replayed")
    assert browser_page.errors == []


@pytest.mark.parametrize("device", WIDTHS)
def test_the_charts_draw_the_history_with_alerts_and_actions_marked(browser_page, managed_env, device):
    now = timezone.now()
    put_jobs("rentguy", Status.RETRY, 4)
    for minutes in (3, 2, 1):
        history._checked.clear()
        history.sample_if_due(now - timedelta(minutes=minutes))
    Alert.objects.create(
        key="rentguy:backlog", queue="rentguy", kind="backlog", severity="warning", state="resolved",
        started_at=now - timedelta(minutes=3), resolved_at=now - timedelta(minutes=1),
    )  # fmt: skip
    operations.flush(QUEUES["rentguy"], "cli:on-call")
    page = browser_page.page
    page.set_viewport_size({"width": WIDTHS[device], "height": 900})
    log_in(browser_page)

    charts = page.locator("section.charts").first
    page.wait_for_function("document.querySelector('section.charts').dataset.drawn > 0")
    assert charts.locator("canvas").count() == 3
    assert (
        "samples, one per 1 min; times in Europe/Amsterdam"
        in charts.locator("[data-chart-status]").inner_text()
    )
    marks = charts.locator("[data-marks] li").all_text_contents()  # inside a closed <details>
    assert len(marks) == 3 and any("queue.flush rentguy by cli:on-call" in mark for mark in marks)
    charts.locator("button[data-range='7d']").click()
    page.wait_for_function(
        "document.querySelector('section.charts button[data-range=\"7d\"]').ariaPressed == 'true'"
    )
    fits(browser_page, f"{device}-charts")
    assert browser_page.errors == []


def test_no_consumer_and_invalid_configuration_are_red(browser_page, managed_env):
    managed_env.update({"QUEUE_MAX_ATTEMPTS": "many"})
    page = browser_page.page
    log_in(browser_page)

    card = page.locator("#queue-rentguy")
    assert card.get_attribute("data-severity") == "critical"
    problems = card.locator("[data-list=problems]").inner_text()
    assert "nothing consumes it" in problems and "RENTGUY_API_URL is not set" in problems
    assert "QUEUE_MAX_ATTEMPTS" in problems
    assert page.locator("[data-config-banner]").count() == 1
    fits(browser_page, "red-laptop")
    page.set_viewport_size({"width": 390, "height": 844})
    fits(browser_page, "red-phone")
    assert browser_page.errors == []


def pages_to_check(browser_page) -> list[str]:
    (job_id,) = put_jobs("rentguy", Status.DEAD, 1)
    Job.objects.filter(pk=job_id).update(last_error="HTTP 500 Internal Server Error")
    incident = incident_services.open_incident(
        "Bookings not reaching RentGuy", "critical", ["rentguy"], actor="cli:on-call"
    )
    return [
        "/dashboard/", "/dashboard/queues/rentguy/jobs", f"/dashboard/jobs/{job_id}/", "/dashboard/flags/",
        "/dashboard/config/", "/dashboard/config/history/", "/dashboard/alerts/", "/dashboard/incidents/",
        f"/dashboard/incidents/{incident.pk}/", "/dashboard/health/", "/dashboard/readiness/",
        "/dashboard/audit/",
    ]  # fmt: skip


@pytest.mark.parametrize("device", WIDTHS)
def test_every_page_passes_axe_and_fits_the_screen(browser_page, managed_env, device):
    paths = pages_to_check(browser_page)
    page = browser_page.page
    page.set_viewport_size({"width": WIDTHS[device], "height": 900})
    log_in(browser_page)
    found = {}
    for path in paths:
        assert browser_page.goto(path).status == 200, path
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes'][:3]]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if serious:
            found[path] = serious
        fits(browser_page, f"{device}{path.replace('/', '-').rstrip('-')}")
    assert found == {}
    assert browser_page.errors == []
