from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def accepted(request):
    """The intake benchmark's baseline: the same server and middleware, and no work."""
    return HttpResponse(b'{"status": "pending"}', status=202, content_type="application/json")


urlpatterns = [
    path("bench/accepted", accepted),
    path("", include("mrdj.urls")),
]
