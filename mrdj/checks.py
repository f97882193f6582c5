"""`manage.py check` names every configuration value that cannot be used. A warning, not an
error: the processes run on the last good value (or the default), so a typo in managed.env
must not stop `migrate` or `make run`, nor the commands that fix it."""

from __future__ import annotations

from django.core.checks import Warning, register

from mrdj.config import invalid_values


@register()
def configuration_values(app_configs, **kwargs) -> list[Warning]:
    return [Warning(str(item), obj=item.name, id="mrdj.W001") for item in invalid_values()]
