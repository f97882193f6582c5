"""A local stand-in for Jira's REST API v2 that keeps issues, comments and their status."""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

from tests.receivers import Answer

DONE = "31"  # the id of the "Done" transition


class FakeJira:
    """Issues in memory; can be down, or slow to answer a create it has already done."""

    def __init__(self):
        self.issues: dict[str, dict] = {}
        self.comments: dict[str, list[str]] = {}
        self.transitions: list[tuple[str, str]] = []
        self.status: dict[str, str] = {}
        self.down = False
        self.slow_create = 0.0
        self.lock = threading.Lock()

    def respond(self, request) -> Answer:
        if self.down:
            return Answer(503, body=b'{"errorMessages":["Jira is down for maintenance"]}')
        path = urlsplit(request.path).path
        with self.lock:
            if path == "/rest/api/2/search/jql":
                jql = parse_qs(urlsplit(request.path).query)["jql"][0]
                label = re.fullmatch(r'labels = "([^"]+)"', jql).group(1)
                found = [{"id": "1", "key": k} for k, f in self.issues.items() if label in f["labels"]]
                return Answer(200, body=json.dumps({"issues": found, "isLast": True}).encode())
            if path == "/rest/api/2/issue" and request.method == "POST":
                key = f"OPS-{len(self.issues) + 1}"
                self.issues[key] = request.json()["fields"]
                self.status[key] = "To Do"
                body = json.dumps({"id": "10000", "key": key, "self": f"/rest/api/2/issue/{key}"}).encode()
                return Answer(201, body=body, delay=self.slow_create)
            match = re.fullmatch(r"/rest/api/2/issue/([A-Z]+-\d+)(?:/(comment|transitions))?", path)
            if match is None or match.group(1) not in self.issues:
                return Answer(404, body=b'{"errorMessages":["Issue does not exist"]}')
            key, what = match.groups()
            if what is None and request.method == "GET":
                return Answer(200, body=json.dumps({"key": key, "fields": self.fields(key)}).encode())
            if what == "comment":
                self.comments.setdefault(key, []).append(request.json()["body"])
                return Answer(201, body=b'{"id": "1"}')
            if what == "transitions" and request.method == "GET":
                return Answer(200, body=json.dumps({"transitions": [{"id": DONE, "name": "Done"}]}).encode())
            if what == "transitions":
                transition = request.json()["transition"]["id"]
                self.transitions.append((key, transition))
                if transition == DONE:
                    self.status[key] = "Done"
                return Answer(204, body=b"")
        return Answer(404, body=b'{"errorMessages":["not found"]}')

    def fields(self, key: str) -> dict:
        done = self.status[key] == "Done"
        return {
            "status": {"name": self.status[key], "statusCategory": {"key": "done" if done else "new"}},
            "resolution": {"name": "Done"} if done else None,
        }
