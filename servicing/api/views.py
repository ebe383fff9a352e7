"""The API v1: thin views over servicing selectors and services (contracts.md → API)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from servicing.domain.accrual import AccrualError
from servicing.models import Channel, Loan, LoanProduct, Mandate
from servicing.selectors import loan_status, quote_payoff
from servicing.services import audit

from . import adapters
from . import permissions as perms
from . import serializers as s
from .errors import Conflict, ServiceRefused, exception_handler
from .throttles import GatewayThrottle, PublicVerifyThrottle, RoleRateThrottle

ERRORS = {code: OpenApiResponse(s.ErrorSerializer, description=desc) for code, desc in (
    (400, "invalid input; `field` names the field at fault"), (401, "no or bad token"),
    (403, "your role may not do this"), (404, "not found"), (429, "throttled"))}


def errors(*codes: int) -> dict:
    return {c: ERRORS[c] for c in codes}


class ApiView(APIView):
    """Every endpoint: token auth, a named permission, per-role throttle, errors as {"error", "field"}."""

    throttle_classes = [RoleRateThrottle]

    def get_exception_handler(self):
        return exception_handler


def _refuse(exc: Exception) -> ServiceRefused:
    return ServiceRefused(str(exc))


def _loan(contract_no: str) -> Loan:
    return get_object_or_404(Loan.objects.select_related("product", "borrower"), contract_no=contract_no)


# ------------------------------------------------------------------------------ loans


class LoanCursor(CursorPagination):
    ordering = "-id"  # the primary key: stable, indexed, no COUNT(*)
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


BUCKET_DPD = {"M0": (0, 0), "M1": (1, 30), "M2": (31, 60), "M3": (61, 90), "M3+": (91, None)}


class LoanListCreateView(ApiView, generics.GenericAPIView):
    pagination_class = LoanCursor
    serializer_class = s.LoanListSerializer

    def get_permissions(self):
        return [(perms.BOOK_LOAN if self.request.method == "POST" else perms.VIEW_LOANS)()]

    def get_queryset(self):
        q = s.LoanListQuerySerializer(data=self.request.query_params)
        q.is_valid(raise_exception=True)
        f = q.validated_data
        qs = Loan.objects.select_related("product", "borrower")
        if "status" in f:
            qs = qs.filter(status=f["status"])
        if "product" in f:
            qs = qs.filter(product__code=f["product"])
        if "bucket" in f:
            lo, hi = BUCKET_DPD[f["bucket"]]
            qs = qs.filter(dpd__gte=lo) if hi is None else qs.filter(dpd__gte=lo, dpd__lte=hi)
        if "dpd_min" in f:
            qs = qs.filter(dpd__gte=f["dpd_min"])
        if "dpd_max" in f:
            qs = qs.filter(dpd__lte=f["dpd_max"])
        if "disbursed_from" in f:
            qs = qs.filter(disbursed_on__gte=f["disbursed_from"])
        if "disbursed_to" in f:
            qs = qs.filter(disbursed_on__lte=f["disbursed_to"])
        return qs

    @extend_schema(operation_id="loans_list", parameters=[s.LoanListQuerySerializer],
                   responses={200: s.LoanListSerializer(many=True), **errors(400, 401, 403, 429)},
                   summary="Loans, newest first (cursor pagination: no total count)")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(operation_id="loans_book", request=s.BookLoanSerializer,
                   responses={201: s.BookedLoanSerializer, 200: s.BookedLoanSerializer, **errors(400, 401, 403, 429)},
                   summary="Book a disbursed loan (origination system); idempotent on contract_no")
    def post(self, request):
        from servicing.services.loans import BookingError, book_loan, get_or_create_borrower
        from servicing.services.mandates import MandateError, activate_mandate, sign_mandate

        ser = s.BookLoanSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        b = d["borrower"]
        existing = Loan.objects.filter(contract_no=d["contract_no"]).select_related("borrower").first() \
            if d.get("contract_no") else None
        if existing is not None:
            if existing.borrower.id_number != b["id_number"].strip().upper() or existing.principal != d["principal"]:
                raise Conflict(f"contract_no: '{existing.contract_no}' is already booked for another borrower "
                               "or amount")
            return Response({"contract_no": existing.contract_no, "created": False, "loan": loan_status(existing)})
        product = LoanProduct.objects.filter(code=d["product"]).first()
        if product is None:
            raise ServiceRefused(f"'{d['product']}' is not a product code", field="product")
        channel = None
        if "account" in d:
            channel = Channel.objects.filter(code=d["account"]["channel"]).first()
            if channel is None:
                raise ServiceRefused(f"'{d['account']['channel']}' is not a channel code", field="account.channel")
        try:
            with transaction.atomic():
                borrower = get_or_create_borrower(name=b["name"], id_number=b["id_number"], phone=b["phone"])
                loan = book_loan(product=product, borrower=borrower, principal=d["principal"], months=d["months"],
                                 start=d["start"], annual_rate_pct=d.get("annual_rate"),
                                 repayment_day=d.get("repayment_day"), method=d.get("method"),
                                 contract_no=d.get("contract_no"), user=request.user)
                if channel is not None:
                    mandate = sign_mandate(loan=loan, channel=channel, account_no=d["account"]["account_no"],
                                           account_name=borrower.name, bank_code=d["account"]["bank_code"],
                                           user=request.user)
                    activate_mandate(mandate, user=request.user, reason="booked with the loan")
        except (BookingError, MandateError, ArithmeticError) as exc:
            raise _refuse(exc) from exc
        return Response({"contract_no": loan.contract_no, "created": True, "loan": loan_status(loan)},
                        status=status.HTTP_201_CREATED)


class LoanDetailView(ApiView):
    permission_classes = [perms.VIEW_LOANS]

    @extend_schema(operation_id="loans_retrieve", responses={200: s.LoanDetailSerializer, **errors(401, 403, 404, 429)},
                   summary="The loan as an operator sees it (the loan JSON of contracts.md)")
    def get(self, request, contract_no: str):
        return Response(loan_status(_loan(contract_no)))


class PayoffQuoteView(ApiView):
    permission_classes = [perms.VIEW_LOANS]

    @extend_schema(operation_id="loans_payoff_quote", parameters=[s.PayoffQuerySerializer],
                   responses={200: s.PayoffQuoteSerializer, **errors(400, 401, 403, 404, 429)},
                   summary="What settles the loan on a date")
    def get(self, request, contract_no: str):
        q = s.PayoffQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        loan = _loan(contract_no)
        day = q.validated_data["date"]
        if loan.status in ("settled", "written_off"):
            raise ServiceRefused(f"loan {loan.contract_no} is {loan.status}; nothing settles it", field="contract_no")
        if day < loan.disbursed_on:
            raise ServiceRefused(f"{day} is before the disbursement on {loan.disbursed_on}", field="date")
        try:
            quote = quote_payoff(loan, day)
        except (AccrualError, ArithmeticError, ValueError) as exc:
            raise ServiceRefused(str(exc), field="date") from exc
        return Response({"contract_no": loan.contract_no, "date": day.isoformat(), **quote.as_json()})


class BorrowerView(ApiView):
    """The loan's borrower, masked; `?reveal=true` shows full data to roles that may, and logs it."""

    permission_classes = [perms.VIEW_LOANS]

    @extend_schema(operation_id="loans_borrower",
                   parameters=[OpenApiParameter("reveal", OpenApiTypes.BOOL, description="unmask (logged)")],
                   responses={200: s.BorrowerSerializer, **errors(401, 403, 404, 429)},
                   summary="The loan's borrower; unmasking needs view_personal_data and is audited")
    def get(self, request, contract_no: str):
        loan = _loan(contract_no)
        b = loan.borrower
        if request.query_params.get("reveal", "").lower() in ("1", "true", "yes"):
            if not request.user.has_perm("console.view_personal_data"):
                self.permission_denied(request, message="your role may not see personal data unmasked")
            audit.record("personal_data.revealed", b, actor=request.user, reason="api",
                         contract=loan.contract_no, fields="name,id_number,phone")
            return Response({"name": b.name, "id_number": b.id_number, "phone": b.phone, "masked": False})
        return Response({"name": b.masked_name, "id_number": b.masked_id_number, "phone": b.masked_phone,
                         "masked": True})


# ------------------------------------------------------------------------------ payments, mandates


class PaymentCreateView(ApiView):
    permission_classes = [perms.POST_PAYMENT]

    @extend_schema(operation_id="payments_create", request=s.PaymentInSerializer,
                   responses={201: s.PaymentOutSerializer, 200: s.PaymentOutSerializer,
                              409: OpenApiResponse(s.ErrorSerializer, description="reference reused"),
                              **errors(400, 401, 403, 404, 429)},
                   summary="Post a repayment; idempotent on the caller's reference (a repeat answers 200)")
    def post(self, request):
        from servicing.services.payments import PaymentError, post_payment

        ser = s.PaymentInSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        loan = Loan.objects.filter(contract_no=d["contract_no"]).first()
        if loan is None:
            raise ServiceRefused(f"no loan '{d['contract_no']}'", field="contract_no")
        try:
            res = post_payment(loan=loan, amount=d["amount"], channel=d["channel"], value_date=d["value_date"],
                               reference=d["reference"], prepay=d.get("prepay", ""), user=request.user,
                               note="api")
        except PaymentError as exc:
            if "already used" in str(exc):
                raise Conflict(str(exc)) from exc
            raise _refuse(exc) from exc
        except ArithmeticError as exc:
            raise ServiceRefused(str(exc), field="amount") from exc
        p = res.payment
        body = {"reference": p.reference, "contract_no": loan.contract_no, "amount": p.amount,
                "applied_amount": p.applied_amount, "credited_amount": p.credited_amount,
                "value_date": p.value_date, "created": res.created, "settled": res.settled}
        return Response(s.PaymentOutSerializer(body).data,
                        status=status.HTTP_201_CREATED if res.created else status.HTTP_200_OK)


def _mandate_out(m: Mandate) -> dict:
    return {"agreement_no": m.agreement_no, "contract_no": m.loan.contract_no, "channel": m.channel.code,
            "status": m.status, "account": m.masked_account, "bank_code": m.bank_code,
            "cancel_cause": m.cancel_cause, "cancel_reason": m.cancel_reason}


class MandateCreateView(ApiView):
    permission_classes = [perms.MANAGE_MANDATE]

    @extend_schema(operation_id="mandates_create", request=s.MandateInSerializer,
                   responses={201: s.MandateOutSerializer, **errors(400, 401, 403, 429)},
                   summary="Record a signed mandate (pending until the bank confirms, or active at once)")
    def post(self, request):
        from servicing.services.mandates import MandateError, activate_mandate, sign_mandate

        ser = s.MandateInSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        loan = Loan.objects.filter(contract_no=d["contract_no"]).select_related("borrower").first()
        if loan is None:
            raise ServiceRefused(f"no loan '{d['contract_no']}'", field="contract_no")
        channel = Channel.objects.filter(code=d["channel"]).first()
        if channel is None:
            raise ServiceRefused(f"'{d['channel']}' is not a channel code", field="channel")
        try:
            with transaction.atomic():
                m = sign_mandate(loan=loan, channel=channel, account_no=d["account_no"],
                                 account_name=d.get("account_name") or loan.borrower.name, bank_code=d["bank_code"],
                                 single_limit=d.get("single_limit"), daily_limit=d.get("daily_limit"),
                                 user=request.user)
                if d["activate"]:
                    m = activate_mandate(m, user=request.user, reason="api: bank confirmed")
        except MandateError as exc:
            raise _refuse(exc) from exc
        return Response(_mandate_out(m), status=status.HTTP_201_CREATED)


class MandateCancelView(ApiView):
    permission_classes = [perms.MANAGE_MANDATE]

    @extend_schema(operation_id="mandates_cancel", request=s.MandateCancelSerializer,
                   responses={200: s.MandateOutSerializer, **errors(400, 401, 403, 404, 429)},
                   summary="Cancel a mandate with its cause and reason")
    def post(self, request, agreement_no: str):
        from servicing.services.mandates import MandateError, cancel_mandate

        m = get_object_or_404(Mandate.objects.select_related("loan", "channel"), agreement_no=agreement_no)
        ser = s.MandateCancelSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            m = cancel_mandate(m, cause=ser.validated_data["cause"], reason=ser.validated_data["reason"],
                               user=request.user)
        except MandateError as exc:
            raise _refuse(exc) from exc
        return Response(_mandate_out(m))


# ------------------------------------------------------------------------------ debit results, gateway


class ResultFileUploadView(ApiView):
    permission_classes = [perms.UPLOAD_RESULTS]
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="debit_results_upload", request=s.ResultFileUploadSerializer,
                   responses={200: s.ImportSummarySerializer,
                              503: OpenApiResponse(s.ErrorSerializer, description="import service pending"),
                              **errors(400, 401, 403, 429)},
                   summary="Upload a bank's result file; answers the import summary (contracts.md)")
    def post(self, request):
        ser = s.ResultFileUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        channel = Channel.objects.filter(code=ser.validated_data["channel"]).first()
        if channel is None:
            raise ServiceRefused(f"'{ser.validated_data['channel']}' is not a channel code", field="channel")
        importer = adapters.import_result_file()
        upload = ser.validated_data["file"]
        try:
            summary = importer(upload.read(), channel=channel, name=Path(upload.name).name, user=request.user)
        except ValueError as exc:
            raise ServiceRefused(str(exc), field="file") from exc
        return Response(summary if isinstance(summary, dict) else summary.as_json())


class GatewayCallbackView(ApiView):
    """HMAC-signed, idempotent: the signature is the authentication (no token)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [GatewayThrottle]

    @extend_schema(operation_id="gateway_callback", request=OpenApiTypes.OBJECT, auth=[],
                   parameters=[OpenApiParameter("gateway", OpenApiTypes.STR, default="sandbox"),
                               OpenApiParameter("X-Gateway-Timestamp", OpenApiTypes.STR, OpenApiParameter.HEADER),
                               OpenApiParameter("X-Gateway-Signature", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                                description="HMAC-SHA256 of timestamp + body")],
                   responses={200: s.GatewayAckSerializer,
                              503: OpenApiResponse(s.ErrorSerializer, description="gateway service pending"),
                              **errors(400, 403, 429)},
                   summary="Payment-gateway notification (HMAC-SHA256 signature header)")
    def post(self, request):
        handler, signature_error, gateway_error = adapters.gateway_callback()
        headers = {k: request.headers.get(k, "") for k in ("X-Gateway-Timestamp", "X-Gateway-Signature")}
        try:
            result = handler(request.body, headers, gateway=request.query_params.get("gateway", "sandbox"))
        except signature_error as exc:
            raise PermissionDenied(str(exc)) from exc
        except gateway_error as exc:
            raise ServiceRefused(str(exc), field="body") from exc
        return Response(result)


# ------------------------------------------------------------------------------ certificates (public)


class CertificateVerifyView(ApiView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PublicVerifyThrottle]

    @extend_schema(operation_id="certificates_verify", auth=[],
                   responses={200: s.CertificateVerifySerializer, **errors(404, 429)},
                   summary="Verify a settlement certificate by its code (public; masked)")
    def get(self, request, code: str):
        cert = adapters.certificate_by_code(code)
        if cert is None or cert.status == "pending":
            raise NotFound("no certificate with this code")
        data = cert.data or {}
        return Response({"valid": cert.status == "issued", "number": cert.number, "status": cert.status,
                         "issued_on": cert.issued_on.isoformat(),
                         "contract_no": data.get("contract_masked") or cert.loan.masked_contract_no,
                         "borrower_name": data.get("borrower_masked_name") or cert.loan.borrower.masked_name,
                         "settled_on": data.get("settled_on") or None})


# ------------------------------------------------------------------------------ maker-checker


def _approval_out(req) -> dict:
    return s.ApprovalOutSerializer(req).data


class ApprovalListCreateView(ApiView):
    def get_permissions(self):
        return [(perms.REQUEST_APPROVAL if self.request.method == "POST" else perms.VIEW_APPROVALS)()]

    @extend_schema(operation_id="approvals_list",
                   parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=["pending", "approved", "rejected",
                                                                                   "failed"])],
                   responses={200: s.ApprovalOutSerializer(many=True), **errors(401, 403, 429)},
                   summary="Maker-checker requests (newest 100)")
    def get(self, request):
        from console.models import ApprovalRequest

        qs = ApprovalRequest.objects.select_related("loan", "requested_by", "decided_by")
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        return Response([_approval_out(r) for r in qs[:100]])

    @extend_schema(operation_id="approvals_create", request=s.ApprovalInSerializer,
                   responses={201: s.ApprovalOutSerializer, **errors(400, 401, 403, 429)},
                   summary="File a waiver, write-off or override request (maker); stores what the maker saw")
    def post(self, request):
        from console.services.approvals import ApprovalError, file_request

        ser = s.ApprovalInSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        loan = Loan.objects.filter(contract_no=d["contract_no"]).first()
        if loan is None:
            raise ServiceRefused(f"no loan '{d['contract_no']}'", field="contract_no")
        try:
            req = file_request(loan=loan, action=d["action"], payload=d.get("payload") or {}, reason=d["reason"],
                               maker=request.user)
        except ApprovalError as exc:
            raise _refuse(exc) from exc
        return Response(_approval_out(req), status=status.HTTP_201_CREATED)


class ApprovalDecisionView(ApiView):
    permission_classes = [perms.APPROVE_APPROVAL]
    decision = "approve"

    def decide(self, request, pk: int):
        from console.models import ApprovalRequest
        from console.services.approvals import ApprovalError, approve, reject

        req = get_object_or_404(ApprovalRequest, pk=pk)
        ser = s.ApprovalDecisionSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            if self.decision == "approve":
                req = approve(req, checker=request.user, note=ser.validated_data["note"])
            else:
                req = reject(req, checker=request.user, note=ser.validated_data["note"])
        except ApprovalError as exc:
            raise _refuse(exc) from exc
        return Response(_approval_out(req))



_DECISION = dict(request=s.ApprovalDecisionSerializer, responses={200: s.ApprovalOutSerializer,
                                                                   **errors(400, 401, 403, 404, 429)})


class ApprovalApproveView(ApprovalDecisionView):
    decision = "approve"

    @extend_schema(operation_id="approvals_approve", summary="Approve and execute (checker ≠ maker)", **_DECISION)
    def post(self, request, pk: int):
        return self.decide(request, pk)


class ApprovalRejectView(ApprovalDecisionView):
    decision = "reject"

    @extend_schema(operation_id="approvals_reject", summary="Reject with a reason (checker ≠ maker)", **_DECISION)
    def post(self, request, pk: int):
        return self.decide(request, pk)
