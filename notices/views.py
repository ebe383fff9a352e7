"""Public certificate verification and certificate download. Thin: selectors read, templates show."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from notices.models import CertificateStatus, SettlementCertificate
from notices.selectors import certificate_by_code


@require_GET
@never_cache
def verify_certificate(request, code: str):
    """Anyone holding the code may check the certificate; only masked data is shown. Unknown → 404."""
    cert = certificate_by_code(code)
    if cert is None:
        return render(request, "notices/verify.html", {"cert": None, "code": code[:20]}, status=404)
    return render(request, "notices/verify.html", {"cert": cert, "data": cert.data})


@login_required
@require_GET
def download_certificate(request, pk: int):
    """Staff with view permission, or the borrower who owns the loan, get the stored PDF."""
    cert = get_object_or_404(SettlementCertificate.objects.select_related("loan__borrower"), pk=pk)
    owner = getattr(request.user, "borrower", None)
    allowed = request.user.has_perm("notices.view_settlementcertificate") or (
        owner is not None and owner.pk == cert.loan.borrower_id)
    if not allowed:
        raise Http404
    if cert.status == CertificateStatus.PENDING or not cert.pdf:
        raise Http404("certificate PDF is still being generated")
    return FileResponse(cert.pdf.open("rb"), as_attachment=True, filename=f"{cert.number}.pdf",
                        content_type="application/pdf")
