"""`manage.py check` refuses a broken incident timing up front, naming the variable."""

from __future__ import annotations

from django.core.checks import Error, register

from mrdj.config import ConfigError


@register()
def incident_configuration(app_configs, **kwargs) -> list[Error]:
    from incidents.timing import Timing

    try:
        Timing.read()
    except ConfigError as error:
        return [Error(str(error), id="incidents.E001")]
    return []
