"""Test settings: a private managed.env; no flag, alert setting or queue mode leaking in from the shell."""

import atexit
import os
import shutil
import tempfile

for _name in [
    name
    for name in os.environ
    if name.startswith(("FLAG_", "ALERT_", "GRAFANA_")) or name == "QUEUE_REDIS_ENABLED"
]:
    del os.environ[_name]
_folder = tempfile.mkdtemp(prefix="mrdj-tests-")
atexit.register(shutil.rmtree, _folder, ignore_errors=True)
os.environ["MANAGED_ENV_PATH"] = os.path.join(_folder, "managed.env")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from mrdj.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Serve static files from the apps, as in development: no collectstatic before tests.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

# A file, not memory, so that Celery workers started by the tests share the test database.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_folder, "test.sqlite3")}  # noqa: F405
