from django.urls import path

from servicing.gateway import views as gateway_views

urlpatterns: list = [
    # payment gateway (issue 4): sandbox pay page and the signed callback
    path("gateway/sandbox/pay/<str:out_trade_no>/", gateway_views.sandbox_pay, name="gateway-sandbox-pay"),
    path("gateway/callback/<str:gateway>/", gateway_views.callback, name="gateway-callback"),
]
