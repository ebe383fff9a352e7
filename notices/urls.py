from django.urls import path

from . import views

app_name = "notices"

urlpatterns = [
    path("verify/<str:code>", views.verify_certificate, name="verify"),
    path("certificates/<int:pk>/download", views.download_certificate, name="certificate-download"),
]
