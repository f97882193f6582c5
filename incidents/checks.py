"""`manage.py check` refuses a broken incident timing up front, naming the variable."""

from __future__ import annotations

from django.core.checks import Warning, register

from mrdj.config import ConfigError


@register()
def incident_configuration(app_configs, **kwargs) -> list[Warning]:
    from incidents.timing import Timing

    try:
        Timing.read()
    except ConfigError as error:
        return [Warning(str(error), id="incidents.W001")]
    return []
