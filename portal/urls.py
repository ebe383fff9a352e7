from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("password-reset/", views.password_reset, name="password_reset"),
    path("password-reset/confirm/", views.password_reset_confirm, name="password_reset_confirm"),
    path("loans/<int:loan_id>/", views.loan_detail, name="loan"),
    path("loans/<int:loan_id>/pay/", views.pay, name="pay"),
    path("loans/<int:loan_id>/auto-debit/", views.mandate, name="mandate"),
    path("loans/<int:loan_id>/auto-debit/cancel/", views.mandate_cancel, name="mandate_cancel"),
    path("loans/<int:loan_id>/hardship/", views.hardship, name="hardship"),
    path("me/api/loans/<int:loan_id>/", views.loan_json, name="loan_json"),
    path("debits/<int:debit_id>/", views.debit_detail, name="debit"),
    path("payments/<uuid:token>/", views.pay_result, name="pay_result"),
    path("certificates/<int:cert_id>/download/", views.certificate_download, name="certificate"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<int:message_id>/", views.inbox_message, name="inbox_message"),
    path("complaints/", views.complaints, name="complaints"),
    path("complaints/new/", views.complaint_new, name="complaint_new"),
    path("complaints/<int:complaint_id>/", views.complaint_detail, name="complaint"),
    # the links that notices put in messages (notices.conf PAY_PATH / RESIGN_PATH)
    path("pay/", views.pay_shortcut, name="pay_shortcut"),
    path("pay/<str:contract_no>/", views.pay_by_contract, name="pay_by_contract"),
    path("mandate/sign/", views.mandate_shortcut, name="mandate_shortcut"),
]
