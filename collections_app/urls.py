from django.urls import include, path

app_name = "collections"
urlpatterns = [
    path("api/v1/collections/", include("collections_app.api.urls")),
]
