"""API shapes. Money is a decimal string in yuan, rounded ROUND_HALF_UP (never a float)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP

from rest_framework import serializers

from servicing.models import Loan
from servicing.models.loans import LoanStatus
from servicing.models.mandates import CancelCause
from servicing.models.payments import PrepayMode


class Money(serializers.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("rounding", ROUND_HALF_UP)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)


class MoneyIn(Money):
    """An incoming amount: at most two decimals, positive (the services check again)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs["rounding"] = None  # refuse "1.005" rather than round it silently
        super().__init__(**kwargs)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    field = serializers.CharField(allow_null=True)


# ------------------------------------------------------------------------------ loans


# The amounts by component as decimal strings, shared by ComponentsSerializer and PayoffQuoteSerializer.
# Comments, not docstrings, on these classes: a docstring becomes the schema's description.
# DRF puts the fields of the bases (in base order) before a class's own, which keeps the documented order.
class _ComponentFields(serializers.Serializer):
    principal = serializers.CharField()
    interest = serializers.CharField()
    penalty = serializers.CharField()
    compound = serializers.CharField()
    fees = serializers.CharField()


class ComponentsSerializer(_ComponentFields):
    total = serializers.CharField()


class MandateSummarySerializer(serializers.Serializer):
    status = serializers.CharField()
    account = serializers.CharField(help_text="masked: 6222 **** **** 1234")


class CaseSummarySerializer(serializers.Serializer):
    status = serializers.CharField()
    stage = serializers.IntegerField(allow_null=True)
    bucket = serializers.CharField()


class CertificateSummarySerializer(serializers.Serializer):
    number = serializers.CharField()
    verification_code = serializers.CharField()
    verify_url = serializers.CharField()


class InstalmentSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    due_date = serializers.DateField()
    principal = serializers.CharField()
    interest = serializers.CharField()
    fee = serializers.CharField()
    penalty = serializers.CharField()
    paid = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "partially_paid", "paid", "overdue"])


class LoanDetailSerializer(serializers.Serializer):
    """The loan JSON of contracts.md (servicing.selectors.loan_status)."""

    contract_no = serializers.CharField()
    status = serializers.ChoiceField(choices=LoanStatus.values)
    dpd = serializers.IntegerField()
    outstanding = ComponentsSerializer()
    overdue = ComponentsSerializer()
    credit_balance = serializers.CharField()
    settled_on = serializers.DateField(allow_null=True)
    mandate = MandateSummarySerializer(allow_null=True)
    collection_case = CaseSummarySerializer(allow_null=True)
    certificate = CertificateSummarySerializer(allow_null=True)
    instalments = InstalmentSerializer(many=True)


class LoanListSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.code")
    borrower_name = serializers.SerializerMethodField()
    borrower_phone = serializers.SerializerMethodField()
    bucket = serializers.SerializerMethodField()
    principal = Money()

    class Meta:
        model = Loan
        fields = ["contract_no", "status", "dpd", "bucket", "product", "principal", "term_months", "disbursed_on",
                  "settled_on", "borrower_name", "borrower_phone"]

    def get_borrower_name(self, obj) -> str:
        return obj.borrower.masked_name

    def get_borrower_phone(self, obj) -> str:
        return obj.borrower.masked_phone

    def get_bucket(self, obj) -> str:
        from servicing.domain.accrual import bucket

        return bucket(obj.dpd)


class LoanListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=LoanStatus.values, required=False)
    product = serializers.CharField(required=False, max_length=40)
    dpd_min = serializers.IntegerField(required=False, min_value=0, max_value=100000)
    dpd_max = serializers.IntegerField(required=False, min_value=0, max_value=100000)
    bucket = serializers.ChoiceField(choices=["M0", "M1", "M2", "M3", "M3+"], required=False)
    disbursed_from = serializers.DateField(required=False)
    disbursed_to = serializers.DateField(required=False)


class PayoffQuerySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="YYYY-MM-DD")


class _QuoteHeader(serializers.Serializer):
    contract_no = serializers.CharField()
    date = serializers.DateField()


class PayoffQuoteSerializer(_QuoteHeader, _ComponentFields):  # contract_no, date, the components, then these
    prepayment_fee = serializers.CharField()
    total = serializers.CharField()


class BorrowerInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    id_number = serializers.CharField(max_length=18)
    phone = serializers.CharField(max_length=20)


class AccountInSerializer(serializers.Serializer):
    account_no = serializers.CharField(max_length=32)
    bank_code = serializers.CharField(max_length=20)
    channel = serializers.CharField(max_length=40)


class BookLoanSerializer(serializers.Serializer):
    contract_no = serializers.CharField(max_length=32, required=False,
                                        help_text="the origination system's contract number; booking is "
                                                  "idempotent on it")
    product = serializers.CharField(max_length=40)
    borrower = BorrowerInSerializer()
    principal = MoneyIn()
    months = serializers.IntegerField(min_value=1, max_value=600)
    start = serializers.DateField()
    annual_rate = serializers.DecimalField(max_digits=9, decimal_places=4, required=False, min_value=0)
    repayment_day = serializers.IntegerField(required=False, min_value=1, max_value=31)
    method = serializers.CharField(required=False, max_length=20)
    account = AccountInSerializer(required=False)


class BookedLoanSerializer(serializers.Serializer):
    contract_no = serializers.CharField()
    created = serializers.BooleanField()
    loan = LoanDetailSerializer()


class BorrowerSerializer(serializers.Serializer):
    name = serializers.CharField()
    id_number = serializers.CharField()
    phone = serializers.CharField()
    masked = serializers.BooleanField()


# ------------------------------------------------------------------------------ payments, mandates


class PaymentInSerializer(serializers.Serializer):
    contract_no = serializers.CharField(max_length=32)
    amount = MoneyIn()
    channel = serializers.ChoiceField(choices=["counter", "transfer"])
    value_date = serializers.DateField()
    reference = serializers.CharField(max_length=80, help_text="the caller's reference; posting is idempotent on it")
    prepay = serializers.ChoiceField(choices=PrepayMode.values, required=False, default="", allow_blank=True)


class PaymentOutSerializer(serializers.Serializer):
    reference = serializers.CharField()
    contract_no = serializers.CharField()
    amount = Money()
    applied_amount = Money()
    credited_amount = Money()
    value_date = serializers.DateField()
    created = serializers.BooleanField(help_text="false when the reference was already posted")
    settled = serializers.BooleanField()


class MandateInSerializer(serializers.Serializer):
    contract_no = serializers.CharField(max_length=32)
    channel = serializers.CharField(max_length=40)
    account_no = serializers.CharField(max_length=32)
    account_name = serializers.CharField(max_length=60, required=False)
    bank_code = serializers.CharField(max_length=20)
    single_limit = MoneyIn(required=False)
    daily_limit = MoneyIn(required=False)
    activate = serializers.BooleanField(default=False, help_text="the bank already confirmed the mandate")


class MandateOutSerializer(serializers.Serializer):
    agreement_no = serializers.CharField()
    contract_no = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()
    account = serializers.CharField()
    bank_code = serializers.CharField()
    cancel_cause = serializers.CharField(allow_blank=True)
    cancel_reason = serializers.CharField(allow_blank=True)


class MandateCancelSerializer(serializers.Serializer):
    cause = serializers.ChoiceField(choices=CancelCause.values)
    reason = serializers.CharField(max_length=200)


# ------------------------------------------------------------------------------ files, gateway, certificates


class ResultFileUploadSerializer(serializers.Serializer):
    channel = serializers.CharField(max_length=40)
    file = serializers.FileField()


class ImportSummarySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["processed", "already_imported", "rejected"])
    rows = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    succeeded_amount = serializers.CharField()
    failed = serializers.DictField(child=serializers.IntegerField())
    unknown = serializers.IntegerField()
    exceptions = serializers.IntegerField()
    unmapped_codes = serializers.ListField(child=serializers.CharField())
    control_total_ok = serializers.BooleanField(allow_null=True)
    errors = serializers.ListField(child=serializers.CharField())
    dry_run = serializers.BooleanField(required=False)
    incidents = serializers.ListField(required=False, help_text="incidents opened by this file")


class GatewayAckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.CharField()
    duplicate = serializers.BooleanField(required=False)
    payment = serializers.CharField(required=False)


class CertificateVerifySerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    number = serializers.CharField()
    status = serializers.CharField()
    issued_on = serializers.DateField()
    contract_no = serializers.CharField(help_text="masked")
    borrower_name = serializers.CharField(help_text="masked")
    settled_on = serializers.DateField(allow_null=True)


# ------------------------------------------------------------------------------ maker-checker


class ApprovalInSerializer(serializers.Serializer):
    contract_no = serializers.CharField(max_length=32)
    action = serializers.ChoiceField(choices=["waive", "write_off", "reactivate_mandate", "payment_on_closed_loan"])
    payload = serializers.DictField(required=False, default=dict)
    reason = serializers.CharField(max_length=2000)


class ApprovalDecisionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class ApprovalOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    action = serializers.CharField()
    contract_no = serializers.CharField(source="loan.contract_no")
    payload = serializers.DictField()
    maker_view = serializers.DictField()
    reason = serializers.CharField()
    status = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by.username")
    requested_at = serializers.DateTimeField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField(allow_blank=True)
    result = serializers.DictField()
