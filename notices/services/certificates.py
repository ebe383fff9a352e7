"""Settlement certificates (结清证明): issued in the settlement transaction, rendered to PDF after commit.

The row (number, verification code, a snapshot of the contents) is written with the settlement, so the
notice can link to it; the PDF is rendered by a worker (WeasyPrint takes ~1 s) and its SHA-256 stored.
A correction re-issues a new version with a new number and code; the old one is marked superseded.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date

from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from notices.conf import business, conf, public_url
from notices.models import CertificateStatus, SettlementCertificate
from servicing.domain.money import chinese_capital, format_amount_grouped
from servicing.services import audit
from servicing.sql import copy_rows

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
METHOD_LABELS = {
    "equal_instalment": "等额本息", "equal_principal": "等额本金", "interest_only": "先息后本",
    "bullet": "到期一次还本付息", "flat_fee": "等本等息（分期手续费）",
}


class CertificateError(ValueError):
    pass


def verify_path(code: str) -> str:
    return f"/verify/{code}"


def new_verification_code() -> str:
    # 32 letters: a random byte modulo 32 picks each evenly (and a cohort's ten thousand codes in milliseconds)
    return "".join(CODE_ALPHABET[b % 32] for b in secrets.token_bytes(12))


def certificate_data(loan, *, number: str, code: str, issued_on: date, version: int) -> dict:
    """Everything notices.md lists, as strings: the PDF and the verify page read this snapshot."""
    borrower, product = loan.borrower, loan.product
    return {
        "lender_name": business("LENDER_NAME", ""), "number": number, "version": version,
        "issued_on": issued_on.isoformat(), "borrower_name": borrower.name,
        "borrower_masked_name": borrower.masked_name, "id_masked": borrower.masked_id_number,
        "contract_no": loan.contract_no, "contract_masked": loan.masked_contract_no, "product": product.name,
        "amount": format_amount_grouped(loan.principal), "amount_capital": chinese_capital(loan.principal),
        "term_months": loan.term_months, "disbursed_on": loan.disbursed_on.isoformat(),
        "method": METHOD_LABELS.get(loan.schedule_method, loan.schedule_method),
        "settled_on": loan.settled_on.isoformat() if loan.settled_on else "",
        "secured": product.secured, "collateral": product.collateral_label,
        "verification_code": code, "verify_url": public_url(verify_path(code)),
    }


RENDER_GROUP = 200  # certificates per render task when many are issued at once (a cohort settling; ~1 s each)


def _enqueue_renders(cert_ids: list[int]) -> None:
    if conf("SYNC_TASKS"):
        for cert_id in cert_ids:
            render_certificate_pdf(cert_id)
        return
    from django_q.tasks import async_task

    if len(cert_ids) == 1:
        async_task("notices.tasks.render_certificate", cert_ids[0], group="notices",
                   task_name=f"certificate-{cert_ids[0]}")
        return
    for i in range(0, len(cert_ids), RENDER_GROUP):
        group = cert_ids[i:i + RENDER_GROUP]
        async_task("notices.tasks.render_certificates", group, group="notices",
                   task_name=f"certificates-{group[0]}-{group[-1]}")


def _number(loan, version: int) -> str:
    base = f"JQ{loan.settled_on:%Y%m%d}{loan.pk:08d}"
    return base if version == 1 else f"{base}-{version}"


def issue_certificates(loans: list, *, issued_on: date | None = None) -> dict[int, SettlementCertificate]:
    """The current certificate of each settled loan (borrower and product loaded), the missing ones created in one
    INSERT: a cohort settling on one day gets its certificates at once. Their PDFs are rendered after commit."""
    for loan in loans:
        if loan.status != "settled" or not loan.settled_on:
            raise CertificateError(f"contract: loan {loan.contract_no} is not settled; no certificate")
    current = {c.loan_id: c for c in SettlementCertificate.objects.select_for_update()
               .filter(loan_id__in=[loan.pk for loan in loans]).exclude(status=CertificateStatus.SUPERSEDED)}
    missing = [loan for loan in loans if loan.pk not in current]
    if not missing:
        return current
    issued_on = issued_on or timezone.localdate()
    now = timezone.now()

    def rows():
        for loan in missing:
            number, code = _number(loan, 1), new_verification_code()
            data = certificate_data(loan, number=number, code=code, issued_on=issued_on, version=1)
            yield (loan.pk, 1, number, code, CertificateStatus.PENDING, issued_on, json.dumps(data, ensure_ascii=False),
                   "", "", "", now)

    copy_rows("notices_settlementcertificate", ("loan_id", "version", "number", "verification_code", "status",
                                                "issued_on", "data", "pdf", "sha256", "reason", "created_at"), rows())
    new = list(SettlementCertificate.objects.filter(loan_id__in=[loan.pk for loan in missing])
               .exclude(status=CertificateStatus.SUPERSEDED).order_by("pk"))
    audit.record_many("certificate.issued", "notices.settlementcertificate", {c.pk: "" for c in new},
                      data={c.pk: {"number": c.number, "version": 1} for c in new})
    ids = [c.pk for c in new]
    transaction.on_commit(lambda: _enqueue_renders(ids), robust=True)
    return current | {c.loan_id: c for c in new}


@transaction.atomic
def issue_certificate(loan, *, reason: str = "", user=None, issued_on: date | None = None) -> SettlementCertificate:
    """The loan's current certificate, created on first call; with `reason`, a new version (re-issue)."""
    if not reason:
        return issue_certificates([loan], issued_on=issued_on)[loan.pk]
    if loan.status != "settled" or not loan.settled_on:
        raise CertificateError(f"contract: loan {loan.contract_no} is not settled; no certificate")
    current = (SettlementCertificate.objects.select_for_update().filter(loan=loan)
               .exclude(status=CertificateStatus.SUPERSEDED).first())
    version = 1
    if current is not None:
        updated = SettlementCertificate.objects.filter(pk=current.pk).exclude(
            status=CertificateStatus.SUPERSEDED).update(status=CertificateStatus.SUPERSEDED)
        if not updated:
            raise CertificateError("certificate: re-issued concurrently, try again")
        version = current.version + 1
    issued_on = issued_on or timezone.localdate()
    number, code = _number(loan, version), new_verification_code()
    cert = SettlementCertificate.objects.create(
        loan=loan, version=version, number=number, verification_code=code, issued_on=issued_on, reason=reason[:200],
        data=certificate_data(loan, number=number, code=code, issued_on=issued_on, version=version))
    audit.record("certificate.issued", cert, actor=user, reason=reason, number=number, version=version)
    transaction.on_commit(lambda: _enqueue_renders([cert.pk]), robust=True)
    return cert


def render_pdf_bytes(data: dict) -> bytes:
    from weasyprint import HTML

    html = render_to_string("notices/certificate.html", {"c": data})
    return HTML(string=html).write_pdf()


def render_certificate_pdf(cert_id: int) -> bool:
    """Render and store the PDF once (idempotent: a second run or a racing worker changes nothing)."""
    cert = SettlementCertificate.objects.filter(pk=cert_id, status=CertificateStatus.PENDING).first()
    if cert is None:
        return False
    pdf = render_pdf_bytes(cert.data)
    digest = hashlib.sha256(pdf).hexdigest()
    name = cert.pdf.storage.save(f"certificates/{cert.issued_on:%Y/%m}/{cert.number}.pdf", ContentFile(pdf))
    updated = SettlementCertificate.objects.filter(pk=cert.pk, status=CertificateStatus.PENDING).update(
        status=CertificateStatus.ISSUED, pdf=name, sha256=digest, rendered_at=timezone.now())
    if not updated:
        cert.pdf.storage.delete(name)
    return bool(updated)
