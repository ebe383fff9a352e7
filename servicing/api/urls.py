"""/api/v1/ (mounted in config/urls.py)."""

from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("loans/", views.LoanListCreateView.as_view(), name="loans"),
    path("loans/<str:contract_no>/", views.LoanDetailView.as_view(), name="loan-detail"),
    path("loans/<str:contract_no>/payoff-quote/", views.PayoffQuoteView.as_view(), name="loan-payoff"),
    path("loans/<str:contract_no>/borrower/", views.BorrowerView.as_view(), name="loan-borrower"),
    path("payments/", views.PaymentCreateView.as_view(), name="payments"),
    path("mandates/", views.MandateCreateView.as_view(), name="mandates"),
    path("mandates/<str:agreement_no>/cancel/", views.MandateCancelView.as_view(), name="mandate-cancel"),
    path("debit-results/", views.ResultFileUploadView.as_view(), name="debit-results"),
    path("gateway/callback/", views.GatewayCallbackView.as_view(), name="gateway-callback"),
    path("certificates/<str:code>/", views.CertificateVerifyView.as_view(), name="certificate-verify"),
    path("approvals/", views.ApprovalListCreateView.as_view(), name="approvals"),
    path("approvals/<int:pk>/approve/", views.ApprovalApproveView.as_view(), name="approval-approve"),
    path("approvals/<int:pk>/reject/", views.ApprovalRejectView.as_view(), name="approval-reject"),
]
