"""The API v1 (contracts.md): loans, booking, payoff, payments (idempotent), mandates, approvals, errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from console.models import ApprovalRequest
from servicing import roles
from servicing.models import AuditLog, Loan, Mandate, Payment
from tests.factories import book
from tests.test_api_fixtures import *  # noqa: F403
from tests.test_api_fixtures import api_as

pytestmark = pytest.mark.django_db


def test_loan_detail_is_the_contract_loan_json(api, loan):
    from servicing.selectors import loan_status

    r = api.get(f"/api/v1/loans/{loan.contract_no}/")
    assert r.status_code == 200
    assert r.json() == loan_status(loan)
    assert r.json()["mandate"]["account"] == "6222 **** **** 2233"


def test_loan_list_filters_and_cursor_pagination_without_count(api, loan, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        book("instalment", "3000.00", 6, date(2026, 2, 1))
    with CaptureQueriesContext(connection) as ctx:
        r = api.get("/api/v1/loans/?page_size=2&product=instalment")
    assert r.status_code == 200
    body = r.json()
    assert len(body["results"]) == 2 and body["next"] and "count" not in body
    assert all(x["product"] == "instalment" for x in body["results"])
    assert "*" in body["results"][0]["borrower_phone"]
    assert not [q for q in ctx.captured_queries if "COUNT(" in (q["sql"] or "").upper()]
    r2 = api.get(body["next"])
    assert len(r2.json()["results"]) == 1
    assert api.get("/api/v1/loans/?status=overdue").json()["results"] == []
    assert api.get("/api/v1/loans/?bucket=M0&dpd_max=0").status_code == 200


def test_bad_filter_is_an_error_naming_the_field(api, loan):
    r = api.get("/api/v1/loans/?dpd_min=abc")
    assert r.status_code == 400
    assert r.json()["field"] == "dpd_min" and r.json()["error"]


def test_payoff_quote_for_a_date(api, loan):
    from servicing.selectors import quote_payoff

    r = api.get(f"/api/v1/loans/{loan.contract_no}/payoff-quote/?date=2026-03-15")
    assert r.status_code == 200
    expected = quote_payoff(loan, date(2026, 3, 15)).as_json()
    assert {k: r.json()[k] for k in expected} == expected
    bad = api.get(f"/api/v1/loans/{loan.contract_no}/payoff-quote/?date=2025-01-01")
    assert bad.status_code == 400 and bad.json()["field"] == "date"
    assert api.get(f"/api/v1/loans/{loan.contract_no}/payoff-quote/").json()["field"] == "date"
    assert api.get("/api/v1/loans/NOPE/payoff-quote/?date=2026-03-15").status_code == 404


def test_book_loan_idempotent_on_contract_no(api, reference):
    body = {"contract_no": "ORIG-0001", "product": "car", "principal": "50000.00", "months": 24,
            "start": "2026-01-05", "borrower": {"name": "王五", "id_number": "110105199001011234",
                                                "phone": "13900001111"},
            "account": {"account_no": "6222020200998877", "bank_code": "ICBC", "channel": "std"}}
    r = api.post("/api/v1/loans/", body, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["created"] is True and r.json()["loan"]["mandate"]["status"] == "active"
    again = api.post("/api/v1/loans/", body, format="json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert Loan.objects.filter(contract_no="ORIG-0001").count() == 1
    clash = api.post("/api/v1/loans/", {**body, "principal": "1.00"}, format="json")
    assert clash.status_code == 409 and clash.json()["field"] == "contract_no"


@pytest.mark.parametrize(("patch", "field"), [
    ({"product": "nope"}, "product"),
    ({"principal": "12.345"}, "principal"),
    ({"months": 1}, "months"),
    ({"borrower": {"name": "王五", "id_number": "123", "phone": "13900001111"}}, "id_number"),
    ({"borrower": {"name": "王五"}}, "borrower.id_number"),
])
def test_booking_errors_name_the_field(api, reference, patch, field):
    body = {"product": "car", "principal": "50000.00", "months": 24, "start": "2026-01-05",
            "borrower": {"name": "王五", "id_number": "110105199001011234", "phone": "13900001111"}, **patch}
    r = api.post("/api/v1/loans/", body, format="json")
    assert r.status_code == 400
    assert r.json()["field"] == field, r.json()


def test_payment_is_idempotent_on_reference(api, loan):
    body = {"contract_no": loan.contract_no, "amount": "1500.00", "channel": "counter",
            "value_date": "2026-02-10", "reference": "BANK-REF-1"}
    first = api.post("/api/v1/payments/", body, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["amount"] == "1500.00" and first.json()["created"] is True
    second = api.post("/api/v1/payments/", body, format="json")
    assert second.status_code == 200 and second.json()["created"] is False
    assert Payment.objects.filter(reference="BANK-REF-1").count() == 1
    reused = api.post("/api/v1/payments/", {**body, "amount": "1.00"}, format="json")
    assert reused.status_code == 409 and reused.json()["field"] == "ref"
    neg = api.post("/api/v1/payments/", {**body, "reference": "X2", "amount": "-5"}, format="json")
    assert neg.status_code == 400 and neg.json()["field"] == "amount"


def test_mandate_create_and_cancel_with_cause(api, loan):
    r = api.post("/api/v1/mandates/", {"contract_no": loan.contract_no, "channel": "std",
                                      "account_no": "6217000011112222", "bank_code": "CCB"}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["status"] == "pending" and r.json()["account"] == "6217 **** **** 2222"
    no = r.json()["agreement_no"]
    missing = api.post(f"/api/v1/mandates/{no}/cancel/", {"cause": "borrower"}, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "reason"
    c = api.post(f"/api/v1/mandates/{no}/cancel/", {"cause": "borrower", "reason": "借款人来电解约"}, format="json")
    assert c.status_code == 200 and c.json()["status"] == "cancelled" and c.json()["cancel_cause"] == "borrower"
    assert Mandate.objects.get(agreement_no=no).cancelled_by.username == "operations_user"
    again = api.post(f"/api/v1/mandates/{no}/cancel/", {"cause": "borrower", "reason": "x"}, format="json")
    assert again.status_code == 400


def test_borrower_masked_unless_revealed_and_reveal_is_logged(role_users, loan):
    ops = api_as(role_users[roles.OPERATIONS])
    masked = ops.get(f"/api/v1/loans/{loan.contract_no}/borrower/").json()
    assert masked["masked"] is True and loan.borrower.phone not in str(masked)
    full = ops.get(f"/api/v1/loans/{loan.contract_no}/borrower/?reveal=true").json()
    assert full["phone"] == loan.borrower.phone and full["id_number"] == loan.borrower.id_number
    log = AuditLog.objects.get(action="personal_data.revealed")
    assert log.actor == role_users[roles.OPERATIONS] and log.object_id == str(loan.borrower.pk)
    auditor = api_as(role_users[roles.AUDITOR])
    assert auditor.get(f"/api/v1/loans/{loan.contract_no}/borrower/?reveal=true").status_code == 403
    assert AuditLog.objects.filter(action="personal_data.revealed").count() == 1


def test_maker_checker_waiver_checker_sees_makers_view(role_users, loan):
    from servicing.services.business_day import run_business_day

    run_business_day(date(2026, 3, 20))
    loan.refresh_from_db()
    maker, checker = api_as(role_users[roles.OPERATIONS]), api_as(role_users[roles.SUPERVISOR])
    payload = {"instalment": 1, "component": "interest", "amount": "10.00", "value_date": "2026-03-20"}
    r = maker.post("/api/v1/approvals/", {"contract_no": loan.contract_no, "action": "waive", "payload": payload,
                                          "reason": "客户投诉后协商减免"}, format="json")
    assert r.status_code == 201, r.json()
    req = r.json()
    assert req["status"] == "pending"
    assert req["maker_view"]["loan"]["contract_no"] == loan.contract_no
    assert "payoff_quote" in req["maker_view"]
    own = api_as(role_users[roles.ADMIN])  # admin may approve, but not as the maker: make one as admin
    self_req = own.post("/api/v1/approvals/", {"contract_no": loan.contract_no, "action": "waive",
                                               "payload": payload, "reason": "x"}, format="json").json()
    refused = own.post(f"/api/v1/approvals/{self_req['id']}/approve/", {}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "decided_by"
    ok = checker.post(f"/api/v1/approvals/{req['id']}/approve/", {"note": "同意"}, format="json")
    assert ok.status_code == 200, ok.json()
    assert ok.json()["status"] == "approved", ok.json()
    inst = loan.instalments.get(seq=1)
    assert inst.interest_waived == Decimal("10.00")
    twice = checker.post(f"/api/v1/approvals/{req['id']}/approve/", {}, format="json")
    assert twice.status_code == 400 and twice.json()["field"] == "status"
    assert AuditLog.objects.filter(action="waiver.posted").count() == 1


def test_maker_errors_caught_at_filing(api, loan):
    r = api.post("/api/v1/approvals/", {"contract_no": loan.contract_no, "action": "waive",
                                        "payload": {"instalment": 99, "component": "interest", "amount": "1",
                                                    "value_date": "2026-03-01"}, "reason": "r"}, format="json")
    assert r.status_code == 400 and r.json()["field"] == "instalment"
    assert ApprovalRequest.objects.count() == 0


def test_write_off_needs_a_second_person_and_clears_the_books(role_users, loan):
    from servicing.models import Loan
    from servicing.services.verify import verify_books

    maker, checker = api_as(role_users[roles.OPERATIONS]), api_as(role_users[roles.SUPERVISOR])
    req = maker.post("/api/v1/approvals/", {"contract_no": loan.contract_no, "action": "write_off",
                                            "payload": {"value_date": "2026-06-01"}, "reason": "无法收回"},
                     format="json").json()
    assert req["status"] == "pending"
    assert Loan.objects.get(pk=loan.pk).status != "written_off"  # nothing happens on the maker's word alone
    out = checker.post(f"/api/v1/approvals/{req['id']}/approve/", {}, format="json").json()
    assert out["status"] != "failed", out
    loan.refresh_from_db()
    assert loan.status == "written_off"
    detail = maker.get(f"/api/v1/loans/{loan.contract_no}/").json()
    assert detail["outstanding"]["total"] == "0.00"
    assert all(check.ok for check in verify_books())


def test_anonymous_gets_401_json(reference):
    r = api_as(None).get("/api/v1/loans/")
    assert r.status_code == 401 and set(r.json()) == {"error", "field"}


def test_certificate_verify_public_and_masked(reference, loan):
    from notices.models import SettlementCertificate

    SettlementCertificate.objects.create(loan=loan, number="JQ-TEST-1", verification_code="ABCDEF123456",
                                         status="issued", issued_on=date(2026, 6, 1), sha256="x" * 64,
                                         data={"contract_masked": loan.masked_contract_no,
                                               "borrower_masked_name": loan.borrower.masked_name,
                                               "settled_on": "2026-05-30"})
    r = api_as(None).get("/api/v1/certificates/ABCDEF123456/")
    assert r.status_code == 200, r.json()
    assert r.json()["valid"] is True and r.json()["borrower_name"] == loan.borrower.masked_name
    assert loan.borrower.name not in str(r.json())
    assert api_as(None).get("/api/v1/certificates/NOPE/").status_code == 404


def test_throttle_per_role(role_users, loan, settings, monkeypatch):
    from servicing.api import throttles

    monkeypatch.setitem(throttles.ROLE_RATES, "auditor", "3/min")
    client = api_as(role_users[roles.AUDITOR])
    codes = [client.get("/api/v1/loans/").status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    assert api_as(role_users[roles.OPERATIONS]).get("/api/v1/loans/").status_code == 200


def test_result_file_upload_answers_the_import_summary(role_users, loan):
    from django.core.files.uploadedfile import SimpleUploadedFile

    # references that are not debits of this database: every row is an exception
    content = ("reference,amount,status,code,message,settled_on,channel_txn_id\n"
               + "".join(f"D20260101-99999999{i},100.00,SUCCESS,00,交易成功,2026-01-01,T{i}\n" for i in range(8))
               ).encode()
    client = api_as(role_users[roles.OPERATIONS])
    r = client.post("/api/v1/debit-results/", {"channel": "std", "file": SimpleUploadedFile("r.csv", content)},
                    format="multipart")
    assert r.status_code == 200, r.content
    body = r.json()
    assert {"rows", "succeeded", "failed", "unmapped_codes", "errors"} <= set(body)
    assert body["status"] == "processed" and body["rows"] == 8 and body["succeeded"] == 0
    assert body["exceptions"] == 8 and all("unknown" in e or "reference" in e for e in body["errors"])
    again = client.post("/api/v1/debit-results/", {"channel": "std", "file": SimpleUploadedFile("r.csv", content)},
                        format="multipart")
    assert again.status_code == 200 and again.json()["status"] == "already_imported"
    bad = client.post("/api/v1/debit-results/", {"channel": "nope", "file": SimpleUploadedFile("r.csv", b"x")},
                      format="multipart")
    assert bad.status_code == 400 and bad.json()["field"] == "channel"


def test_gateway_callback_signed_and_idempotent(reference, loan):
    from servicing.gateway.services import get_gateway, start_gateway_payment
    from servicing.models import GatewayPayment

    order = start_gateway_payment(loan, "500.00")
    gp = GatewayPayment.objects.get(out_trade_no=order["out_trade_no"])
    body, headers = get_gateway("sandbox").build_callback(gp, succeeded=True)
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    client = api_as(None)
    first = client.post("/api/v1/gateway/callback/", body, content_type="application/json", **extra)
    assert first.status_code == 200, first.content
    assert first.json()["ok"] is True
    again = client.post("/api/v1/gateway/callback/", body, content_type="application/json", **extra)
    assert again.status_code == 200
    assert Payment.objects.filter(loan=loan).count() == 1
    forged = client.post("/api/v1/gateway/callback/", body, content_type="application/json",
                         HTTP_X_GATEWAY_TIMESTAMP=headers.get("X-Gateway-Timestamp", "0"),
                         HTTP_X_GATEWAY_SIGNATURE="0" * 64)
    assert forged.status_code == 403 and set(forged.json()) == {"error", "field"}
