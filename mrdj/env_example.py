"""managed.env.example, written from the registry: every variable, grouped as the playbook
is, with its meaning and its default. `python manage.py config example` prints it; a test
fails when the file in the repository is out of date."""

from __future__ import annotations

import textwrap

from mrdj.declarations import REGISTRY, Variable
from mrdj.variables import (
    FLAGS,
    INCIDENTS,
    JIRA,
    PERSONALIZATION,
    QUEUES,
    TELEMETRY,
    THRESHOLDS,
    TOKENS,
    WEB,
    WEBHOOKS,
)

GROUP_ORDER = (FLAGS, TELEMETRY, WEBHOOKS, THRESHOLDS, JIRA, QUEUES, TOKENS, INCIDENTS, PERSONALIZATION, WEB)
HEADER = """\
# managed.env: the runtime configuration of mrdj (Mister DJ operations backend).
# Written from the registry of variables (python manage.py config example); do not edit
# this example by hand.
#
# mrdj reads managed.env (path in MANAGED_ENV_PATH, default next to manage.py) below the
# real environment: a variable set in the service's environment always wins, and the
# dashboard and `manage.py flags` then cannot change it. Running processes pick up a change
# within a second or two, except where a variable says "read at start-up".
#
# Every line below is commented out and shows the default (or an example where there is
# none). Booleans accept on/off, true/false, 1/0 and yes/no. A value that cannot be used is
# not obeyed: the last good value stands, and `manage.py check`, /healthz ("degraded") and
# the readiness check name it until it is fixed.
"""


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=88, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def _lines(variable: Variable) -> list[str]:
    notes = [variable.description]
    if variable.restart:
        notes.append(f"Read at start-up ({variable.restart}).")
    if variable.secret:
        notes.append("A secret: never shown or logged.")
    value = variable.example or variable.default
    return _comment(" ".join(notes)) + [f"# {variable.name}={value}"]


def example_text() -> str:
    parts = [HEADER]
    for group in GROUP_ORDER:
        members = [variable for variable in REGISTRY.values() if variable.group == group]
        if not members:
            continue
        sections = "sections" if " " in group.playbook else "section"
        title = f"# --- {group.title} (playbook {sections} {group.playbook}) "
        parts.append(title.ljust(89, "-"))
        for variable in members:
            parts.extend(_lines(variable))
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


DOCS_START = "<!-- variables: written by `python manage.py config table`; do not edit by hand -->"
DOCS_END = "<!-- end of variables -->"


def markdown_table() -> str:
    """The table of every variable in docs/configuration.md."""
    rows = [DOCS_START, ""]
    for group in GROUP_ORDER:
        members = [variable for variable in REGISTRY.values() if variable.group == group]
        rows += [f"### {group.title} (playbook section {group.playbook})", ""]
        rows += ["| variable | type | default | applies | meaning |", "| --- | --- | --- | --- | --- |"]
        for variable in members:
            kind = variable.kind.value + (", secret" if variable.secret else "")
            if variable.minimum is not None:
                kind += f", at least {variable.minimum:g}"
            default = f"`{variable.default}`" if variable.default else "(empty)"
            applies = f"at start-up ({variable.restart})" if variable.restart else "within seconds"
            meaning = variable.description.replace("|", "\\|")
            rows.append(f"| `{variable.name}` | {kind} | {default} | {applies} | {meaning} |")
        rows.append("")
    return "\n".join([*rows, DOCS_END]) + "\n"
