"""Borrower self-service pages: thin views over portal.selectors (reads) and portal.services (changes).

Every view that takes an id reads it through selectors.get_owned / loan_for_borrower, which filter by
request.user.borrower: another borrower's id is a 404.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from servicing.models import Debit, Loan
from servicing.models.loans import LoanStatus
from servicing.selectors import debit_answers

from . import fragments, selectors, services
from .forms import (
    CancelMandateForm,
    ComplaintForm,
    HardshipForm,
    PayForm,
    PhoneLoginForm,
    ResetConfirmForm,
    ResetRequestForm,
    SignMandateForm,
)
from .models import PayIntent


def borrower_required(view):
    """Logged in (else → login page) and a borrower (staff accounts have no self-service)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        borrower = getattr(request.user, "borrower", None)
        if borrower is None:
            raise PermissionDenied("not a borrower account")
        request.borrower = borrower
        return view(request, *args, **kwargs)

    return wrapped


def _render(request, template: str, context: dict | None = None, status: int = 200):
    ctx = {"borrower": getattr(request, "borrower", None), "unread": 0}
    if ctx["borrower"] is not None:
        ctx["unread"] = selectors.unread_count(ctx["borrower"])
    ctx.update(context or {})
    return render(request, template, ctx, status=status)


# --------------------------------------------------------------------------- login / logout / reset


class PortalLoginView(LoginView):
    template_name = "portal/login.html"
    authentication_form = PhoneLoginForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return reverse("portal:home")

    def form_invalid(self, form):
        if getattr(self.request, "axes_locked_out", False):
            # django-axes locked this phone number + IP: answer with our page instead of its bare 429 text
            self.request.axes_locked_out = False
            minutes = int(float(settings.AXES_COOLOFF_TIME) * 60)
            return render(self.request, "portal/locked.html", {"minutes": minutes}, status=429)
        return super().form_invalid(form)


@require_POST
def logout_view(request):
    logout(request)
    messages.info(request, _("您已安全退出"))
    return redirect("portal:login")


@require_http_methods(["GET", "POST"])
def password_reset(request):
    form = ResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.request_reset_code(phone=form.cleaned_data["phone"], ip=request.META.get("REMOTE_ADDR"))
        messages.info(request, _("如该手机号已注册，验证码已发送，10 分钟内有效"))
        return redirect(f"{reverse('portal:password_reset_confirm')}?phone={form.cleaned_data['phone']}")
    return render(request, "portal/password_reset.html", {"form": form})


@require_http_methods(["GET", "POST"])
def password_reset_confirm(request):
    form = ResetConfirmForm(request.POST or None, initial={"phone": request.GET.get("phone", "")})
    if request.method == "POST" and form.is_valid():
        try:
            services.reset_password(phone=form.cleaned_data["phone"], code=form.cleaned_data["code"],
                                    new_password=form.cleaned_data["new_password"])
        except services.PortalError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("密码已重置，请用新密码登录"))
            return redirect("portal:login")
    return render(request, "portal/password_reset_confirm.html", {"form": form})


# --------------------------------------------------------------------------- home and loan


def _page_key(page: str, doc: str, as_of) -> tuple:
    return (page, fragments.digest(doc), as_of, get_language(), fragments.calendar_stamp())


@require_GET
@login_required
def home(request):
    """One query (borrower, unread count, the loans as JSON) after the session and user; the loan cards are
    rendered once per distinct document (portal/fragments.py)."""
    page = selectors.home_page(request.user.pk)
    if page is None:
        raise PermissionDenied("not a borrower account")
    request.borrower = page.borrower
    as_of = selectors.today()
    body = fragments.get_or_render(
        _page_key("home", page.doc or "", as_of),
        lambda: render_to_string("portal/_home_loans.html", {"loans": page.loans(as_of)}))
    return render(request, "portal/home.html", {"borrower": page.borrower, "unread": page.unread,
                                                "body": mark_safe(body)})  # noqa: S308 - our own template


@require_GET
@login_required
def loan_detail(request, loan_id: int):
    """Like home: one query, the body rendered once per distinct loan document."""
    page = selectors.loan_page(request.user.pk, loan_id)
    if page is None:
        raise PermissionDenied("not a borrower account")
    if page.doc is None:
        raise Http404("not found")
    request.borrower = page.borrower
    as_of = selectors.today()

    def body() -> tuple[str, str]:
        context = page.build(as_of)
        return context["loan"].product.name, render_to_string("portal/_loan_body.html", context)

    title, html = fragments.get_or_render(_page_key("loan", page.doc, as_of), body)
    return render(request, "portal/loan.html", {"borrower": page.borrower, "unread": page.unread,
                                                "title": title, "body": mark_safe(html)})  # noqa: S308


@require_GET
@borrower_required
def debit_detail(request, debit_id: int):
    debit = selectors.get_owned(request.borrower, Debit.objects.select_related("loan", "batch", "mandate"),
                                pk=debit_id)
    views = {v.debit.pk: v for v in selectors.debit_views(debit.loan)}
    return _render(request, "portal/debit.html", {
        "d": views[debit.pk], "debit": debit, "loan": debit.loan,
        "answers": debit_answers(debit),
    })


@require_GET
@borrower_required
def loan_json(request, loan_id: int):
    """The loan as JSON (contracts.md shape) for the borrower's own loan only."""
    from servicing.selectors import loan_status

    return JsonResponse(loan_status(selectors.loan_for_borrower(request.borrower, loan_id)))


# --------------------------------------------------------------------------- pay now


@require_GET
@borrower_required
def pay_shortcut(request):
    """/pay/ (the link in notices): straight to the pay page when there is one loan to pay."""
    open_ids = list(selectors.owned(request.borrower, Loan).filter(
        status__in=[LoanStatus.ACTIVE, LoanStatus.OVERDUE]).values_list("pk", flat=True)[:2])
    if len(open_ids) == 1:
        return redirect("portal:pay", loan_id=open_ids[0])
    return redirect("portal:home")


@require_GET
@borrower_required
def pay_by_contract(request, contract_no: str):
    """/pay/<contract_no>/ (the link in debit-failure notices): the borrower's own loan, else 404."""
    loan = selectors.get_owned(request.borrower, Loan, contract_no=contract_no)
    return redirect("portal:pay", loan_id=loan.pk)


@require_http_methods(["GET", "POST"])
@borrower_required
def pay(request, loan_id: int):
    as_of = selectors.today()
    loan = selectors.loan_for_borrower(request.borrower, loan_id)
    figures = selectors.loan_figures(loan, loan.live, as_of)
    if figures.is_settled:
        messages.info(request, _("该贷款已结清，无需还款"))
        return redirect("portal:loan", loan_id=loan.pk)
    options = selectors.pay_options(loan, figures, as_of)
    form = PayForm(request.POST or None, initial={
        "token": services.new_pay_token(), "kind": "overdue" if "overdue" in options else "next"})
    if request.method == "POST" and form.is_valid():
        try:
            outcome = services.pay_now(borrower=request.borrower, loan_id=loan.pk, kind=form.cleaned_data["kind"],
                                       amount=form.cleaned_data["amount"], token=form.cleaned_data["token"],
                                       user=request.user, as_of=as_of)
        except services.PortalError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("portal:pay_result", token=outcome.intent.token)
    if request.method == "POST":  # a failed attempt gets a fresh token: the old one may be spent
        data = request.POST.copy()
        data["token"] = services.new_pay_token()
        form.data = data
    return _render(request, "portal/pay.html", {"loan": loan, "f": figures, "options": options, "form": form})


@require_GET
@borrower_required
def pay_result(request, token):
    intent = selectors.get_owned(request.borrower, PayIntent.objects.select_related("payment"), token=token)
    loan = selectors.loan_for_borrower(request.borrower, intent.loan_id)
    as_of = selectors.today()
    figures = selectors.loan_figures(loan, loan.live, as_of)
    paid_lines = selectors.payment_lines(intent.payment) if intent.payment_id else []
    return _render(request, "portal/pay_result.html", {"intent": intent, "loan": loan, "f": figures,
                                                       "paid_lines": paid_lines})


# --------------------------------------------------------------------------- auto-debit


@require_GET
@borrower_required
def mandate_shortcut(request):
    open_ids = list(selectors.owned(request.borrower, Loan).filter(
        status__in=[LoanStatus.ACTIVE, LoanStatus.OVERDUE]).values_list("pk", flat=True)[:2])
    if len(open_ids) == 1:
        return redirect("portal:mandate", loan_id=open_ids[0])
    return redirect("portal:home")


@require_http_methods(["GET", "POST"])
@borrower_required
def mandate(request, loan_id: int):
    loan = selectors.loan_for_borrower(request.borrower, loan_id)
    form = SignMandateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.sign_new_account(borrower=request.borrower, loan_id=loan.pk,
                                      account_no=form.cleaned_data["account_no"],
                                      bank_code=form.cleaned_data["bank_code"], user=request.user)
        except services.PortalError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("新账户已提交签约，等待银行确认（通常 1 个工作日）。确认后将替换原扣款账户。"))
            return redirect("portal:mandate", loan_id=loan.pk)
    mandates = list(selectors.owned(request.borrower, loan.mandates.all()).order_by("-signed_at")[:10])
    return _render(request, "portal/mandate.html", {
        "loan": loan, "current": selectors._usable_mandate(loan), "mandates": mandates, "form": form})


@require_http_methods(["GET", "POST"])
@borrower_required
def mandate_cancel(request, loan_id: int):
    as_of = selectors.today()
    loan = selectors.loan_for_borrower(request.borrower, loan_id)
    current = selectors._usable_mandate(loan)
    if current is None:
        messages.info(request, _("该贷款没有生效的代扣协议"))
        return redirect("portal:mandate", loan_id=loan.pk)
    figures = selectors.loan_figures(loan, loan.live, as_of, current)
    form = CancelMandateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.cancel_auto_debit(borrower=request.borrower, loan_id=loan.pk,
                                       password=form.cleaned_data["password"], user=request.user)
        except services.PortalError as exc:
            form.add_error("password", str(exc))
        else:
            messages.success(request, _("自动扣款已解约。请在每期到期日前主动还款。"))
            return redirect("portal:loan", loan_id=loan.pk)
    product = loan.product
    penalty_rate = (loan.annual_rate_pct if loan.annual_rate_pct > 0 else loan.fee_rate_pct * 12) * (
        1 + product.penalty_markup_pct / 100)
    return _render(request, "portal/mandate_cancel.html", {
        "loan": loan, "f": figures, "mandate": current, "form": form,
        "penalty_rate": penalty_rate.quantize(penalty_rate.__class__("0.01")), "grace_days": product.grace_days})


# --------------------------------------------------------------------------- settlement certificate


@require_GET
@borrower_required
def certificate_download(request, cert_id: int):
    model = services.certificate_model()
    if model is None:
        raise Http404("not found")
    cert = selectors.get_owned(request.borrower, model.objects.exclude(status="superseded"), pk=cert_id)
    try:
        pdf = services.certificate_pdf(cert)
    except services.IntegrationPending as exc:
        messages.info(request, str(exc))
        return redirect("portal:loan", loan_id=cert.loan_id)
    return FileResponse(pdf.open("rb"), as_attachment=True, filename=f"{cert.number}.pdf",
                        content_type="application/pdf")


# --------------------------------------------------------------------------- inbox


@require_GET
@borrower_required
def inbox(request):
    items, unread = selectors.inbox(request.borrower)
    return _render(request, "portal/inbox.html", {"items": items, "unread_here": unread})


@require_GET
@borrower_required
def inbox_message(request, message_id: int):
    try:
        msg = services.mark_read(borrower=request.borrower, message_id=message_id)
    except services.IntegrationPending as exc:
        raise Http404("not found") from exc
    return _render(request, "portal/inbox_message.html", {"msg": msg})


# --------------------------------------------------------------------------- complaints and hardship


@require_GET
@borrower_required
def complaints(request):
    return _render(request, "portal/complaints.html", {"complaints": selectors.complaints(request.borrower),
                                                       "today": selectors.today()})


@require_http_methods(["GET", "POST"])
@borrower_required
def complaint_new(request):
    loans = list(selectors.owned(request.borrower, Loan).select_related("product").order_by("-disbursed_on"))
    initial = {"loan": request.GET.get("loan")} if request.GET.get("loan") else {}
    form = ComplaintForm(request.POST or None, loans=loans, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            complaint = services.file_complaint(
                borrower=request.borrower, loan_id=form.cleaned_data["loan"], subject=form.cleaned_data["subject"],
                description=form.cleaned_data["description"], user=request.user)
        except services.PortalError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("投诉已受理，编号 %(ref)s，我们将在 %(due)s 前答复您") % {
                "ref": complaint.reference, "due": complaint.due_on})
            return redirect("portal:complaint", complaint_id=complaint.pk)
    return _render(request, "portal/complaint_new.html", {"form": form, "loans": loans})


@require_GET
@borrower_required
def complaint_detail(request, complaint_id: int):
    model = services.complaint_model()
    if model is None:
        raise Http404("not found")
    complaint = selectors.get_owned(request.borrower, model.objects.select_related("loan"), pk=complaint_id)
    today = selectors.today()
    return _render(request, "portal/complaint.html", {
        "c": complaint, "today": today, "days_left": (complaint.due_on - today).days})


@require_http_methods(["GET", "POST"])
@borrower_required
def hardship(request, loan_id: int):
    loan = selectors.loan_for_borrower(request.borrower, loan_id)
    form = HardshipForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.request_hardship(borrower=request.borrower, loan_id=loan.pk, kind=form.cleaned_data["kind"],
                                      reason=form.cleaned_data["reason"],
                                      n_instalments=form.cleaned_data.get("n_instalments"),
                                      defer_to=form.cleaned_data.get("defer_to"), user=request.user)
        except services.PortalError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("申请已提交，我们会在审核后通知您。审核期间催收暂停。"))
            return redirect("portal:loan", loan_id=loan.pk)
    return _render(request, "portal/hardship.html", {"loan": loan, "form": form})
