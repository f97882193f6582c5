"""`manage.py check` (and migrate, so `make run`) refuses a broken alert configuration up front,
rather than leaving it to be found by the first alert that cannot go out."""

from __future__ import annotations

from django.core.checks import Warning, register

from mrdj.config import ConfigError


@register()
def alert_configuration(app_configs, **kwargs) -> list[Warning]:
    from alerting import jira, lifecycle, targets, thresholds

    errors = []
    for read in (
        targets.webhook_targets,
        targets.severity_routes,
        thresholds.from_variables,
        lifecycle.Timing.read,
        jira.JiraSettings.read,
    ):
        try:
            read()
        except ConfigError as error:
            errors.append(Warning(str(error), id="alerting.W001"))
    return errors
