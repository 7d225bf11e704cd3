from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from assistants import urls as assistants_urls
from chat import urls as chat_urls
from core.api.docs import ApiDocsView
from knowledge import urls as knowledge_urls
from organizations import urls as organizations_urls
from supportai import health, overview
from webhooks import urls as webhooks_urls
from widget import urls as widget_urls

APPS = [organizations_urls, assistants_urls, chat_urls, knowledge_urls, widget_urls, webhooks_urls]

api_v1 = [route for app in APPS for route in app.api_v1]
pages = [route for app in APPS for route in app.pages]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("api/widget/", include(widget_urls.api_widget)),
    path("", overview.OverviewView.as_view(), name="overview"),
    *pages,
]

if settings.ADMIN_ENABLED:
    # Off by default (one less sign-in form to attack); when on, under the same throttle.
    from organizations.forms import ThrottledAdminAuthenticationForm

    admin.site.login_form = ThrottledAdminAuthenticationForm
    urlpatterns.append(path("admin/", admin.site.urls))

handler400 = "core.api.exceptions.handler400"
handler403 = "core.api.exceptions.handler403"
handler404 = "core.api.exceptions.handler404"
handler500 = "core.api.exceptions.handler500"
