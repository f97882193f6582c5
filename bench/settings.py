"""mrdj's settings plus the benchmarks' baseline views."""

from mrdj.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
