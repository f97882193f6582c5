"""The personalization webhook and profile API, behind FLAG_PERSONALIZATION."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from personalization import signatures, visitor_events
from personalization.models import VisitorEvent

pytestmark = pytest.mark.django_db
SECRET = "whsec-personalization-test"
API_TOKEN = "personalization-api-token"
API = {"HTTP_AUTHORIZATION": f"Bearer {API_TOKEN}"}


@pytest.fixture
def enabled(managed_env):
    managed_env.update(
        {
            "FLAG_PERSONALIZATION": "on",
            "PERSONALIZATION_WEBHOOK_SECRET": SECRET,
            "PERSONALIZATION_API_TOKEN": API_TOKEN,
        }
    )
    return managed_env


# An hour ago, in the website's own zone: events are accepted within a window around now.
HOUR_AGO = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
SENT_AT = HOUR_AGO.astimezone(ZoneInfo("Europe/Amsterdam")).isoformat()


def event(**overrides) -> dict:
    return {
        "event_id": "evt-1",
        "visitor_id": "vis-42",
        "type": "package_viewed",
        "properties": {"package": "gold", "page": "/pakketten/gold"},
        "timestamp": SENT_AT,
        **overrides,
    }


def post(
    body, *, secret: str = SECRET, timestamp: int | None = None, signature: str | None = None, **headers
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sent = {
        "HTTP_X_MRDJ_TIMESTAMP": stamp,
        "HTTP_X_MRDJ_SIGNATURE": signature if signature is not None else signatures.sign(secret, stamp, raw),
        **headers,
    }
    return Client().post("/webhooks/personalization", raw, content_type="application/json", **sent)


def test_a_signed_event_is_stored(enabled):
    response = post(event())
    assert response.status_code == 201
    assert response.json() == {"event_id": "evt-1", "stored": True, "duplicate": False}
    stored = VisitorEvent.objects.get()
    assert (stored.visitor_id, stored.type, stored.package) == ("vis-42", "package_viewed", "gold")
    assert stored.occurred_at == HOUR_AGO


def test_a_replayed_event_id_answers_200_and_is_stored_once(enabled):
    assert post(event()).status_code == 201
    again = post(event(type="page_view"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert VisitorEvent.objects.get().type == "package_viewed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signature": ""}, "X-MRDJ-Timestamp and X-MRDJ-Signature are required"),
        ({"signature": "v1=" + "0" * 64}, "does not match"),
        ({"secret": "someone-elses-secret"}, "does not match"),
        ({"timestamp": int(time.time()) - 301}, "more than 5 minutes from now"),
        ({"timestamp": int(time.time()) + 400}, "more than 5 minutes from now"),
    ],
)
def test_a_missing_wrong_or_stale_signature_is_401_and_stores_nothing(enabled, change, message):
    response = post(event(), **change)
    assert response.status_code == 401
    assert message in response.json()["error"]
    assert not VisitorEvent.objects.exists()


def test_a_signature_over_another_body_is_refused(enabled):
    stamp = str(int(time.time()))
    signature = signatures.sign(SECRET, stamp, json.dumps(event()).encode())
    response = post(event(visitor_id="vis-evil"), timestamp=int(stamp), signature=signature)
    assert response.status_code == 401 and not VisitorEvent.objects.exists()


def test_a_rotated_secret_may_sign_alongside_the_old_one(enabled):
    raw = json.dumps(event()).encode()
    stamp = str(int(time.time()))
    both = f"{signatures.sign('old-secret', stamp, raw)}, {signatures.sign(SECRET, stamp, raw)}"
    assert post(raw, timestamp=int(stamp), signature=both).status_code == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (event(event_id=7), "'event_id' must be a string"),
        (event(visitor_id=""), "'visitor_id' must be 1-100"),
        ({k: v for k, v in event().items() if k != "visitor_id"}, "'visitor_id' is missing"),
        (event(type="Page View"), "'type' must be a lower-case event name"),
        (event(properties=["gold"]), "'properties' must be a JSON object"),
        (event(timestamp=1700000000), "'timestamp' must be an ISO 8601 string"),
        (event(timestamp="yesterday"), "'timestamp' is not an ISO 8601"),
        (event(timestamp="2026-11-27T19:00:00"), "'timestamp' must include a timezone"),
        (event(timestamp="0001-01-01T00:00:00+14:00"), "'timestamp' must lie within 365 days before"),
        (event(timestamp="9999-12-31T23:59:59-12:00"), "'timestamp' must lie within 365 days before"),
        (event(timestamp="2001-01-01T00:00:00Z"), "and 24 hours after now"),
    ],
)
def test_an_invalid_body_is_400_naming_the_field_and_stores_nothing(enabled, body, message):
    response = post(body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not VisitorEvent.objects.exists()


def test_a_huge_body_is_refused_before_anything_else(enabled):
    response = post(event(properties={"blob": "x" * 70_000}))
    assert response.status_code == 413
    assert not VisitorEvent.objects.exists()


def test_without_a_secret_no_event_can_be_verified(enabled):
    enabled.set("PERSONALIZATION_WEBHOOK_SECRET", "")
    response = post(event())
    assert response.status_code == 503 and "PERSONALIZATION_WEBHOOK_SECRET" in response.json()["error"]


def test_both_endpoints_are_404_naming_the_flag_while_it_is_off_and_open_when_switched_on(enabled):
    from mrdj.flags import set_flag

    set_flag("FLAG_PERSONALIZATION", "off", actor="cli:test")
    webhook = post(event())
    profile = Client().get("/api/personalization/vis-42", **API)
    for response in (webhook, profile):
        assert response.status_code == 404
        assert response.json()["flag"] == "FLAG_PERSONALIZATION"
        assert "FLAG_PERSONALIZATION is off" in response.json()["error"]
    assert not VisitorEvent.objects.exists()
    set_flag("FLAG_PERSONALIZATION", "on", actor="cli:test")  # as the dashboard toggle does
    assert post(event()).status_code == 201
    assert Client().get("/api/personalization/vis-42", **API).status_code == 200


def test_the_profile_sums_up_a_visitors_events(enabled):
    t0 = timezone.now() - timedelta(days=3)
    views = ["gold", "gold", "silver", "gold", "platinum", "silver"]
    kinds = [("page_view", {}), ("page_view", {}), ("quote_requested", {"package": "gold"})]
    made = [("package_viewed", {"package": name}) for name in views] + kinds
    for n, (kind, properties) in enumerate(made):
        visitor_events.record(
            visitor_events.parse_event(
                event(
                    event_id=f"e{n}",
                    type=kind,
                    properties=properties,
                    timestamp=(t0 + timedelta(hours=n)).isoformat(),
                )
            )
        )
    visitor_events.record(visitor_events.parse_event(event(event_id="other", visitor_id="vis-7")))
    response = Client().get("/api/personalization/vis-42", **API)
    assert response.status_code == 200
    profile = response.json()
    assert profile["events"] == 9
    assert profile["counts_by_type"] == {"package_viewed": 6, "page_view": 2, "quote_requested": 1}
    assert profile["top_event_types"] == ["package_viewed", "page_view", "quote_requested"]
    assert profile["top_packages"] == [
        {"package": "gold", "views": 4},
        {"package": "silver", "views": 2},
        {"package": "platinum", "views": 1},
    ]
    assert (
        profile["first_seen"] == t0.isoformat()
        and profile["last_seen"] == (t0 + timedelta(hours=8)).isoformat()
    )
    assert profile["asked_for_quote"] is True and profile["booked"] is False


def test_the_profile_needs_the_api_token_and_knows_unknown_visitors(enabled):
    assert Client().get("/api/personalization/vis-42").status_code == 401
    assert Client().get("/api/personalization/vis-42", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = Client().get("/api/personalization/nobody", **API)
    assert response.status_code == 404 and "nobody" in response.json()["error"]


def test_events_past_the_retention_period_are_deleted_in_batches(enabled):
    enabled.set("PERSONALIZATION_RETENTION_DAYS", "30")
    now = timezone.now()
    for n in range(25):
        age = timedelta(days=31) if n < 20 else timedelta(days=29)
        visitor_events.record(
            visitor_events.parse_event(event(event_id=f"e{n}", timestamp=(now - age).isoformat()))
        )
    assert visitor_events.purge_expired(now, batch_size=7) == 20
    assert VisitorEvent.objects.count() == 5
    assert visitor_events.purge_expired(now) == 0


@pytest.mark.parametrize("visitor", ["a%00b", "a%0Ab", "%E2%80%AEx", "-x"])
def test_a_visitor_id_that_cannot_be_one_is_refused(enabled, visitor):
    response = Client().get(f"/api/personalization/{visitor}", HTTP_AUTHORIZATION=f"Bearer {API_TOKEN}")

    assert response.status_code == 400
    assert "the visitor id must be 1-100 letters" in response.json()["error"]
