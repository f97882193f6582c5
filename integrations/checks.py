"""`manage.py check` (and so migrate and `make run`) names a queue setting that cannot be used."""

from __future__ import annotations

from django.core.checks import Warning, register

from integrations.delivery import QueueSettings
from integrations.engine import threads_per_queue
from integrations.queues import QUEUES
from integrations.stalls import stall_ms
from mrdj.config import ConfigError, get_config


@register()
def queue_configuration(app_configs, **kwargs) -> list[Warning]:
    errors = []
    reads = [lambda: QueueSettings.read(get_config()), threads_per_queue, stall_ms]
    reads += [queue.limits for queue in QUEUES.values()]
    for read in reads:
        try:
            read()
        except ConfigError as error:
            errors.append(Warning(str(error), id="integrations.W001"))
    return errors
