"""`manage.py check` refuses a broken incident timing up front, naming the variable, and says
when the status page is half configured (nothing would be published)."""

from __future__ import annotations

from django.core.checks import Warning, register

from mrdj.config import ConfigError, get_config


@register()
def incident_configuration(app_configs, **kwargs) -> list[Warning]:
    from incidents.timing import Timing

    try:
        Timing.read()
    except ConfigError as error:
        return [Warning(str(error), id="incidents.W001")]
    return []


@register()
def status_page_configuration(app_configs, **kwargs) -> list[Warning]:
    config = get_config()
    page_id, api_key = (config.value(name).strip() for name in ("STATUSPAGE_PAGE_ID", "STATUSPAGE_API_KEY"))
    if bool(page_id) == bool(api_key):
        return []
    missing = "STATUSPAGE_API_KEY" if page_id else "STATUSPAGE_PAGE_ID"
    return [
        Warning(
            f"the status page needs both STATUSPAGE_PAGE_ID and STATUSPAGE_API_KEY: {missing} is empty, "
            "so nothing is published",
            id="incidents.W002",
        )
    ]
