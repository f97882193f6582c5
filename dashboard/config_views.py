"""The Configuration tab: every variable in the registry, grouped as the playbook is, edited
one at a time (validated before anything is written), its history, diff and rollback."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from dashboard import config_probes
from dashboard.views import action, answer, render_page
from mrdj import configuration
from mrdj.auth import staff_only
from mrdj.declarations import REGISTRY
from mrdj.models import ConfigVersion

PERMISSION = "mrdj.change_configuration"


@require_GET
@staff_only
def config(request: HttpRequest) -> HttpResponse:
    groups = [
        (
            group,
            [
                (entry, configuration.seen_token(entry.raw), entry.variable.name in config_probes.PROBES)
                for entry in entries
            ],
        )
        for group, entries in configuration.grouped()
    ]
    latest = ConfigVersion.objects.first()
    return render_page(request, "config.html", "config", groups=groups, latest=latest)


@action(PERMISSION)
def change(request: HttpRequest, name: str) -> HttpResponse:
    if name not in REGISTRY:
        return answer(
            request, f"{name[:60]} is not a configuration variable", messages.ERROR, "dashboard:config"
        )
    value = None if "clear" in request.POST else request.POST.get("value", "")
    if value == "" and REGISTRY[name].secret:
        return answer(
            request, f"{name}: type the new value, or use Clear", messages.ERROR, "dashboard:config"
        )
    try:
        version = configuration.change_seen(name, value, request.POST.get("seen", ""), request.user)
    except configuration.Refused as refused:
        return answer(request, str(refused), messages.ERROR, "dashboard:config")
    if version is None:
        return answer(request, f"{name} already holds that value.", messages.INFO, "dashboard:config")
    restart = REGISTRY[name].restart
    note = f" It applies at the next start ({restart})." if restart else " It applies within seconds."
    return answer(request, f"Saved {name} as version {version.pk}.{note}", fallback="dashboard:config")


@action(PERMISSION)
def probe(request: HttpRequest, name: str) -> HttpResponse:
    """A Test button: does what the variable points at answer (with the value saved now)?"""
    if name not in config_probes.PROBES:
        return answer(request, f"{name[:60]} has no test", messages.ERROR, "dashboard:config")
    passed, sentence = config_probes.run(name, request.user)
    return answer(request, sentence, messages.SUCCESS if passed else messages.ERROR, "dashboard:config")


@require_GET
@staff_only
def history(request: HttpRequest) -> HttpResponse:
    versions = list(ConfigVersion.objects.all()[:100])
    rows, compared = [], None
    older, newer = request.GET.get("a", ""), request.GET.get("b", "")
    if older.isdigit() and newer.isdigit():
        first = ConfigVersion.objects.filter(pk=int(older)).first()
        second = ConfigVersion.objects.filter(pk=int(newer)).first()
        if first and second:
            rows, compared = configuration.diff(first, second), (first.pk, second.pk)
    return render_page(
        request, "config_history.html", "config", versions=versions, diff=rows, compared=compared
    )


@action(PERMISSION)
def rollback(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ConfigVersion, pk=version_id)
    try:
        made = configuration.rollback(version, request.user)
    except configuration.Refused as refused:
        return answer(request, str(refused), messages.ERROR, "dashboard:config-history")
    if made is None:
        return answer(
            request,
            f"managed.env already holds version {version.pk}'s values.",
            messages.INFO,
            "dashboard:config-history",
        )
    return answer(
        request,
        f"Rolled back to version {version.pk} as version {made.pk}.",
        fallback="dashboard:config-history",
    )
