"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

Each test saves screenshots under test-screenshots/ (the test run prints where).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from alerting.models import Alert
from integrations.models import Status
from tests.conftest import wait_until
from tests.support import flowing, put_jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
PASSWORD = "a-long-test-password-1"
TABS = ["/dashboard/", "/dashboard/flags/", "/dashboard/config/", "/dashboard/alerts/", "/dashboard/health/",
        "/dashboard/readiness/", "/dashboard/audit/"]  # fmt: skip


def log_in(browser_page) -> None:
    User.objects.create_superuser("ops-lead", password=PASSWORD)
    page = browser_page.page
    browser_page.goto("/dashboard/")
    assert "/admin/login/" in page.url  # sent to Django's login page
    page.fill("#id_username", "ops-lead")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard/$"))


def card_figures(page, queue: str) -> dict[str, str]:
    card = page.locator(f"#queue-{queue}")
    return {
        field: card.locator(f"[data-field={field}]").inner_text()
        for field in ("backlog", "active", "dead_letter")
    }


def test_every_tab_renders_without_a_javascript_error(browser_page, managed_env):
    log_in(browser_page)
    for path in TABS:
        response = browser_page.goto(path)
        assert response.status == 200, path
        browser_page.page.wait_for_load_state("networkidle")
        browser_page.screenshot(path.strip("/").replace("/", "-") or "dashboard")
    browser_page.page.set_viewport_size({"width": 390, "height": 844})  # a phone
    browser_page.goto("/dashboard/")
    assert browser_page.page.locator(".card").first.bounding_box()["width"] <= 390
    browser_page.screenshot("phone")
    assert browser_page.errors == []


def test_queue_cards_match_metrics_queues(browser_page, managed_env):
    flowing(managed_env)
    put_jobs("rentguy", Status.RETRY, 3)
    put_jobs("sevensa", Status.DEAD, 2)
    log_in(browser_page)
    metrics = browser_page.page.request.get(browser_page.base_url + "/metrics/queues").json()
    for queue, figures in metrics["queues"].items():
        shown = card_figures(browser_page.page, queue)
        assert shown == {key: str(figures[key]) for key in shown}
    badge = browser_page.page.locator("#queue-sevensa .badge")
    assert badge.inner_text().lower() == "warning"  # colour and word
    browser_page.screenshot("cards")
    assert browser_page.errors == []


def test_flush_and_replay_change_the_counts_without_a_reload(
    browser_page, managed_env, inprocess_worker, upstream
):
    put_jobs("rentguy", Status.RETRY, 3)
    put_jobs("rentguy", Status.DEAD, 2)
    log_in(browser_page)
    page = browser_page.page
    page.evaluate("window.notReloaded = true")
    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.click("#queue-rentguy form.replay button")
    page.wait_for_selector("#flash .msg:has-text('2 dead-letter job(s) replayed')")
    page.locator("#queue-rentguy [data-field=dead_letter]").filter(has_text=re.compile(r"^0$")).wait_for()
    page.click("#queue-rentguy form.flush button")
    page.wait_for_selector("#flash .msg:has-text('flushed')")
    # The in-process worker delivers what was flushed and replayed; the card follows by itself.
    wait_until(lambda: card_figures(page, "rentguy")["backlog"] == "0", timeout=30)
    assert dialogs[0] == "Replay 2 dead-letter job(s) on rentguy?"
    # The card refreshed after the replay: the 2 replayed wait (or are delivered already).
    assert re.fullmatch(
        r"rentguy: \d+ waiting, 3 of them retrying: flush retries those 3 now\. Flush\?", dialogs[1]
    )
    assert len(dialogs) == 2
    assert page.evaluate("window.notReloaded") is True
    assert len(upstream.received) == 5
    browser_page.screenshot("after-flush-and-replay")
    assert browser_page.errors == []


def test_a_flag_toggle_writes_managed_env_and_a_forced_flag_is_disabled(
    browser_page, managed_env, monkeypatch
):
    monkeypatch.setenv("FLAG_TELEMETRY", "on")
    log_in(browser_page)
    page = browser_page.page
    page.on("dialog", lambda dialog: dialog.accept())
    browser_page.goto("/dashboard/flags/")
    page.click("#flag-FLAG_PERSONALIZATION button")
    page.wait_for_selector("#flash .msg:has-text('FLAG_PERSONALIZATION is now on.')")
    assert managed_env.get("FLAG_PERSONALIZATION") == "on"
    assert page.locator("#flag-FLAG_PERSONALIZATION [data-value]").inner_text().lower() == "on"
    forced = page.locator("#flag-FLAG_TELEMETRY")
    assert forced.locator("button").is_disabled()
    assert "Forced by FLAG_TELEMETRY" in forced.inner_text()
    browser_page.screenshot("flags")
    assert browser_page.errors == []


def test_acknowledging_an_alert_names_the_first_responder(browser_page, managed_env):
    alert = Alert.objects.create(
        queue="rentguy", kind="backlog", severity="critical", started_at=timezone.now(), jira_key="OPS-7"
    )
    log_in(browser_page)
    page = browser_page.page
    browser_page.goto("/dashboard/alerts/")
    page.click(f"#alert-{alert.pk} button")
    page.wait_for_selector(f"#flash .msg:has-text('first responder for alert {alert.pk}')")
    assert page.locator(f"#alert-{alert.pk} [data-responder]").inner_text() == "ops-lead"
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "ops-lead"
    browser_page.screenshot("acknowledged")
    assert browser_page.errors == []


def test_configuration_is_edited_in_the_browser_each_kind_of_value(browser_page, managed_env):
    log_in(browser_page)
    page = browser_page.page
    page.on("dialog", lambda dialog: dialog.accept())
    browser_page.goto("/dashboard/config/")

    def edit(name: str, value: str) -> str:
        row = page.locator(f"#var-{name}")
        row.locator("input[name=value]").fill(value)
        row.locator("button", has_text=re.compile("Save|Replace")).click()
        page.wait_for_load_state("networkidle")
        return page.locator("#flash").inner_text()

    assert "Saved QUEUE_MAX_ATTEMPTS" in edit("QUEUE_MAX_ATTEMPTS", "4")  # a whole number
    assert "Saved RENTGUY_API_URL" in edit("RENTGUY_API_URL", "https://crm.example/v1/leads")  # a URL
    assert "Saved ALERT_SEVERITY_ROUTE" in edit("ALERT_SEVERITY_ROUTE", "critical:#dr-war-room")  # a list
    assert "Saved LOG_LEVEL" in edit("LOG_LEVEL", "warning")  # a choice, read at start-up
    assert "next start" in page.locator("#flash").inner_text()
    assert "Saved ALERT_JIRA_TOKEN" in edit("ALERT_JIRA_TOKEN", "secret-typed-in-the-browser")  # a secret
    assert "secret-typed-in-the-browser" not in page.content()
    browser_page.screenshot("config-saved")
    refused = edit("QUEUE_LEASE_MS", "10")
    assert "QUEUE_LEASE_MS='10' must be at least 1000" in refused
    browser_page.screenshot("config-refused")

    assert managed_env.get("QUEUE_MAX_ATTEMPTS") == "4" and managed_env.get("LOG_LEVEL") == "warning"
    assert managed_env.get("QUEUE_LEASE_MS") is None
    browser_page.goto("/dashboard/config/history/")
    assert page.locator("tbody tr").count() == 5
    browser_page.screenshot("config-history")
    assert browser_page.errors == []
