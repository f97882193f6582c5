from __future__ import annotations

import email.utils

import pytest

from integrations.delivery import QueueSettings, parse_retry_after, retry_delay_ms

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("header", "expected_ms"),
    [
        ("120", 120_000),
        (" 5 ", 5_000),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90_000),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0),  # a date in the past: now
        ("999999", 3_600_000),  # capped at an hour
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(header, expected_ms):
    assert parse_retry_after(header, now=NOW) == expected_ms


def test_backoff_doubles_within_its_jitter_and_never_undercuts_retry_after():
    settings = QueueSettings(
        retry_base_ms=1000,
        retry_max_ms=8000,
        max_attempts=10,
        connect_timeout_ms=1,
        read_timeout_ms=1,
        breaker_failures=5,
        probe_ms=1000,
        probe_max_ms=8000,
        lease_ms=60_000,
    )

    for attempt, ceiling in [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (9, 8000)]:
        delays = {retry_delay_ms(attempt, settings) for _ in range(50)}
        assert all(ceiling // 2 <= d <= ceiling for d in delays), (attempt, delays)
    assert retry_delay_ms(1, settings, retry_after_ms=60_000) == 60_000
