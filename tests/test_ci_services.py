import pytest
from django.db import connection

from tests.conftest import REQUIRE_SERVICES


@pytest.mark.django_db
def test_ci_runs_the_suite_on_postgresql():
    if not REQUIRE_SERVICES:
        pytest.skip("only CI (MRDJ_REQUIRE_SERVICES=1) must run on PostgreSQL")
    assert connection.vendor == "postgresql"
