from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "RepayDesk 运营后台"
admin.site.site_title = "RepayDesk"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("servicing.api.urls")),  # the REST API (servicing/api)
    path("", include("servicing.urls")),  # gateway sandbox, API v1 (servicing)
    path("", include("notices.urls")),  # /verify/<code>, certificate downloads
    path("", include("collections_app.urls")),
    path("", include("portal.urls")),  # borrower self-service
]
