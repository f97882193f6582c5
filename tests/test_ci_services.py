import os

import pytest
from django.db import connection


@pytest.mark.django_db
def test_the_suite_runs_on_the_database_ci_asked_for():
    expected = os.environ.get("MRDJ_EXPECT_DATABASE")
    if not expected:
        pytest.skip("only CI (MRDJ_EXPECT_DATABASE) says which database the suite must run on")
    assert connection.vendor == expected
