"""This process's telemetry state: installed or not, exporting or not, and under which role.

A leaf: everything else in the package reads `runtime.exporting` to decide, at the cost of
one attribute check, whether there is anything to record.
"""

from __future__ import annotations

import threading


class Runtime:
    """Installed once per process (bootstrap), then switched on and off by the watcher."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.role = ""
        self.pid = 0
        self.installed = False
        self.failed = False
        self.exporting = False
        self.reason = ""
        self.last_recorded = 0.0
        self.lock = threading.Lock()


runtime = Runtime()
