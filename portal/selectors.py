"""Reads for the self-service pages. Everything a borrower sees goes through :func:`owned` /
:func:`get_owned`, which always filter by the borrower: another borrower's id is a 404, never a leak.

Query counts are constant in the size of the borrower's history: each page reads its rows with a fixed
number of queries (prefetches), and all sums are done in Python over those rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Model, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from servicing.domain.money import ZERO
from servicing.models import Allocation, Borrower, Instalment, Loan, Mandate, Payment
from servicing.models.loans import InstalmentStatus, LoanStatus
from servicing.models.mandates import LIVE_MANDATE_STATUSES, MandateStatus

# model label -> the lookup from that model to its borrower. Anything not listed cannot be read here.
OWNER_PATHS: dict[str, str] = {
    "servicing.Loan": "borrower",
    "servicing.Mandate": "borrower",
    "servicing.Payment": "loan__borrower",
    "servicing.Instalment": "loan__borrower",
    "servicing.Debit": "loan__borrower",
    "portal.PayIntent": "borrower",
    "notices.InboxMessage": "borrower",
    "notices.SettlementCertificate": "loan__borrower",
    "collections_app.Complaint": "borrower",
    "collections_app.HardshipArrangement": "loan__borrower",
}


def _adapters():
    from portal import services

    return services


def today() -> date:
    """The borrower's date (Asia/Shanghai): the value date of a payment made now."""
    return timezone.localdate()


def _owner_path(model: type[Model]) -> str:
    label = model._meta.label
    if label in OWNER_PATHS:
        return OWNER_PATHS[label]
    raise LookupError(f"{label} has no owner path: it cannot be shown in self-service")


def owned(borrower: Borrower, model_or_qs: type[Model] | QuerySet) -> QuerySet:
    """The rows of a model (or queryset) that belong to `borrower`. The only way portal code reads rows."""
    qs = model_or_qs if isinstance(model_or_qs, QuerySet) else model_or_qs._default_manager.all()
    return qs.filter(**{_owner_path(qs.model): borrower})


def get_owned(borrower: Borrower, model_or_qs: type[Model] | QuerySet, **lookups) -> Model:
    """One row of `borrower`'s, or 404 (also for ids that exist but belong to someone else)."""
    obj = owned(borrower, model_or_qs).filter(**lookups).first()
    if obj is None:
        raise Http404("not found")
    return obj


# --------------------------------------------------------------------------- loan figures


@dataclass
class InstalmentRow:
    seq: int
    due_date: date
    total: Decimal
    paid: Decimal
    outstanding: Decimal
    state: str  # paid | overdue | due_today | partially_paid | upcoming
    penalty: Decimal

    @property
    def state_label(self) -> str:
        return {
            "paid": _("已还清"), "overdue": _("已逾期"), "due_today": _("今日到期"),
            "partially_paid": _("部分已还"), "upcoming": _("未到期"),
        }[self.state]


@dataclass
class LoanFigures:
    loan: Loan
    as_of: date
    rows: list[InstalmentRow]
    overdue_amount: Decimal  # exactly what cures the loan if paid today (penalty to date included)
    overdue_count: int
    oldest_overdue: date | None
    next_due_date: date | None
    next_due_amount: Decimal
    remaining_principal: Decimal
    mandate: Mandate | None = None

    @property
    def is_settled(self) -> bool:
        return self.loan.status == LoanStatus.SETTLED

    @property
    def dpd(self) -> int:
        return (self.as_of - self.oldest_overdue).days if self.oldest_overdue else 0

    @property
    def next_payment_amount(self) -> Decimal:
        """Paying the next instalment pays what is overdue first (oldest first), so both together."""
        return self.overdue_amount + self.next_due_amount

    @property
    def status_label(self) -> str:
        if self.loan.status == LoanStatus.SETTLED:
            return _("已结清")
        if self.loan.status == LoanStatus.WRITTEN_OFF:
            return _("已核销")
        return _("逾期") if self.overdue_amount > ZERO else _("正常")

    @property
    def status_class(self) -> str:
        if self.loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
            return "done"
        return "bad" if self.overdue_amount > ZERO else "ok"


def loan_figures(loan: Loan, instalments: list[Instalment], as_of: date, mandate: Mandate | None = None) -> LoanFigures:
    """Schedule state and the amounts to show, from the loan's live instalments (no queries)."""
    from servicing.services.accrual import pending_penalty

    rows: list[InstalmentRow] = []
    overdue = next_amount = principal_left = ZERO
    overdue_count = 0
    oldest = next_date = None
    for inst in sorted(instalments, key=lambda i: (i.due_date, i.seq)):
        if inst.status == InstalmentStatus.SUPERSEDED:
            continue
        out = inst.total_outstanding
        principal_left += inst.outstanding("principal")
        pen = cmp = ZERO
        if out > ZERO and inst.due_date < as_of and loan.status not in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
            pen, cmp = pending_penalty(loan, inst, as_of)
            out += pen + cmp
            overdue += out
            overdue_count += 1
            oldest = oldest or inst.due_date
            state = "overdue"
        elif out <= ZERO:
            state = "paid"
        elif inst.due_date == as_of:
            state = "due_today"
        elif inst.total_paid > ZERO:
            state = "partially_paid"
        else:
            state = "upcoming"
        if state in ("due_today", "partially_paid", "upcoming") and next_date is None:
            next_date, next_amount = inst.due_date, out
        rows.append(InstalmentRow(
            seq=inst.seq, due_date=inst.due_date, total=inst.total_due + pen + cmp, paid=inst.total_paid,
            outstanding=out, state=state,
            penalty=inst.outstanding("penalty") + inst.outstanding("compound") + pen + cmp))
    return LoanFigures(loan=loan, as_of=as_of, rows=rows, overdue_amount=overdue, overdue_count=overdue_count,
                       oldest_overdue=oldest, next_due_date=next_date, next_due_amount=next_amount,
                       remaining_principal=principal_left, mandate=mandate)


def _live_instalments() -> Prefetch:
    return Prefetch("instalments", queryset=Instalment.objects.exclude(status=InstalmentStatus.SUPERSEDED)
                    .order_by("due_date", "seq"), to_attr="live")


def _live_mandates() -> Prefetch:
    return Prefetch("mandates", queryset=Mandate.objects.filter(status__in=LIVE_MANDATE_STATUSES)
                    .order_by("-signed_at"), to_attr="live_mandates")


def _usable_mandate(loan: Loan) -> Mandate | None:
    mandates = getattr(loan, "live_mandates", [])
    for status in (MandateStatus.ACTIVE, MandateStatus.SUSPENDED, MandateStatus.PENDING):
        for m in mandates:
            if m.status == status:
                return m
    return None


def home(borrower: Borrower, as_of: date) -> list[LoanFigures]:
    """Each loan with its status, next due date and amount, and the amount that cures it (3 queries)."""
    loans = (owned(borrower, Loan).select_related("product").prefetch_related(_live_instalments(), _live_mandates())
             .order_by("status", "-disbursed_on"))
    out = [loan_figures(loan, loan.live, as_of, _usable_mandate(loan)) for loan in loans]
    out.sort(key=lambda f: (f.is_settled, -(f.overdue_amount > 0), f.next_due_date or date.max))
    return out


def loan_for_borrower(borrower: Borrower, loan_id: int) -> Loan:
    loan = (owned(borrower, Loan).select_related("product", "borrower")
            .prefetch_related(_live_instalments(), _live_mandates()).filter(pk=loan_id).first())
    if loan is None:
        raise Http404("not found")
    return loan


# --------------------------------------------------------------------------- the timeline


@dataclass
class TimelineItem:
    kind: str  # "debit" | "payment"
    at: datetime | date
    sort_key: tuple
    amount: Decimal
    title: str
    result: str
    tone: str  # ok | bad | wait
    next_step: str = ""
    pay_now: bool = False
    lines: list[tuple[str, Decimal]] = field(default_factory=list)
    url: str = ""


COMPONENT_LABELS = {"principal": "本金", "interest": "利息", "fee": "手续费", "penalty": "罚息", "compound": "复利"}


def component_label(component: str) -> str:
    return _(COMPONENT_LABELS.get(component, component))


def payment_items(loan: Loan) -> list[TimelineItem]:
    """Every payment with what it paid: per instalment and component (2 queries whatever the history)."""
    payments = (loan.payments.order_by("-value_date", "-pk")
                .prefetch_related(Prefetch("allocations", queryset=Allocation.objects.select_related("instalment")
                                           .only("amount", "component", "payment_id", "instalment__seq")
                                           .order_by("instalment__seq", "pk"))))
    from servicing.models.payments import PaymentChannel

    return [TimelineItem(
        kind="payment", at=p.value_date, sort_key=(p.value_date, 1, p.created_at), amount=p.amount,
        title=_("还款 · %(channel)s") % {"channel": PaymentChannel(p.channel).label},
        result=_("已入账"), tone="ok", lines=payment_lines(p)) for p in payments]


def payment_lines(payment: Payment) -> list[tuple[str, Decimal]]:
    """What one payment paid, per instalment and component, plus what went to the credit balance."""
    per: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for a in payment.allocations.all():
        per[(a.instalment.seq, a.component)] += a.amount
    lines = [(_("第%(seq)s期 %(component)s") % {"seq": seq, "component": component_label(c)}, amount)
             for (seq, c), amount in per.items()]
    if payment.credited_amount > ZERO:
        lines.append((_("转入挂账余额（下期自动抵扣）"), payment.credited_amount))
    return lines


FALLBACK_REASONS = {
    "insufficient_funds": "扣款账户余额不足", "limit_daily_monthly": "超过银行卡日/月累计限额",
    "limit_single": "超过银行卡单笔扣款限额", "account_state": "扣款账户状态异常（冻结、挂失或销户）",
    "identity_mismatch": "扣款账户户名与借款人不符", "mandate_invalid": "代扣协议无效或已解约",
    "card_invalid": "银行卡无效", "unknown": "银行处理中，结果未明", "debited_not_posted": "银行已扣款",
    "channel_down": "银行系统维护，暂时无法扣款", "technical": "系统技术原因", "unclassified": "银行返回其他原因",
}


def debit_reason(category: str) -> str:
    """The result of a debit in plain words, from its category (never from the bank's message text)."""
    try:
        from servicing.services.debits.policy import PLAIN_REASON
    except ImportError:
        PLAIN_REASON = {}
    if category in PLAIN_REASON:
        return str(PLAIN_REASON[category])
    return _(FALLBACK_REASONS.get(category, FALLBACK_REASONS["unclassified"]))


@dataclass
class DebitView:
    debit: object
    at: date
    result: str
    tone: str
    next_step: str
    pay_now: bool


def describe_debit(debit, retry_state, loan: Loan) -> DebitView:
    """When, how much, the result in plain words, and what happens next."""
    at = debit.batch.business_date if debit.batch_id else debit.due_date
    live = loan.status not in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF)
    status = debit.status
    if status == "succeeded":
        return DebitView(debit, at, _("扣款成功"), "ok", "", False)
    if status == "planned":
        return DebitView(debit, at, _("待送银行扣款"), "wait", _("将于 %(d)s 发起扣款") % {"d": at}, False)
    if status in ("submitted", "unknown"):
        return DebitView(debit, at, _("银行处理中，结果未明") if status == "unknown" else _("已送银行，等待结果"), "wait",
                         _("结果确认前不会重复扣款；如已扣款会自动入账"), False)
    if status == "cancelled":
        return DebitView(debit, at, _("已取消，未送银行"), "wait", "", False)
    if status == "returned":
        return DebitView(debit, at, _("银行已退回此笔扣款"), "bad",
                         _("不再自动扣款 — 请立即还款") if live else "", live)
    reason = debit_reason(debit.category)
    if not live:
        return DebitView(debit, at, reason, "bad", "", False)
    if retry_state is not None and retry_state.last_debit_id not in (None, debit.pk):
        return DebitView(debit, at, reason, "bad", _("之后已再次扣款（见上方记录）"), False)
    if retry_state is not None and retry_state.status == "scheduled" and retry_state.next_retry_on:
        return DebitView(debit, at, reason, "bad",
                         _("我们将于 %(d)s 再次尝试扣款；现在还款可避免罚息") % {"d": retry_state.next_retry_on}, True)
    if retry_state is not None and retry_state.status == "held":
        return DebitView(debit, at, reason, "wait", _("银行恢复后将重新扣款，期间不收罚息"), True)
    return DebitView(debit, at, reason, "bad", _("不再自动扣款 — 请立即还款"), True)


def debit_views(loan: Loan) -> list[DebitView]:
    """Every debit of the loan described (2 queries)."""
    from servicing.models import Debit, RetryState

    debits = list(Debit.objects.filter(loan=loan).select_related("batch").order_by("-id"))
    if not debits:
        return []
    states = {rs.instalment_id: rs for rs in RetryState.objects.filter(loan=loan)}
    return [describe_debit(d, states.get(d.instalment_id), loan) for d in debits]


def debit_items(loan: Loan, as_of: date) -> list[TimelineItem]:
    from django.urls import reverse

    items = []
    for v in debit_views(loan):
        d = v.debit
        items.append(TimelineItem(
            kind="debit", at=v.at, sort_key=(v.at, 0, d.created_at), amount=d.amount,
            title=_("自动扣款 · 第%(n)s次") % {"n": d.attempt + 1} if d.attempt else _("自动扣款"),
            result=v.result, tone=v.tone, next_step=v.next_step, pay_now=v.pay_now,
            url=reverse("portal:debit", args=[d.pk])))
    return items


def timeline(loan: Loan, as_of: date) -> list[TimelineItem]:
    """Debit attempts and payments, newest first."""
    items = payment_items(loan) + debit_items(loan, as_of)
    items.sort(key=lambda i: i.sort_key, reverse=True)
    return items


# --------------------------------------------------------------------------- other pages


def pay_options(loan: Loan, figures: LoanFigures, as_of: date) -> dict[str, Decimal]:
    """The amounts the pay page offers, computed here and again when the payment is posted."""
    from servicing.selectors import quote_payoff

    options: dict[str, Decimal] = {}
    if figures.overdue_amount > ZERO:
        options["overdue"] = figures.overdue_amount
    if figures.next_due_amount > ZERO:
        options["next"] = figures.next_payment_amount
    if loan.status not in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        options["payoff"] = quote_payoff(loan, as_of).total
    return options


def inbox(borrower: Borrower, limit: int = 50) -> tuple[list, int]:
    model = _adapters().inbox_model()
    if model is None:
        return [], 0
    qs = owned(borrower, model)
    return list(qs.order_by("-created_at")[:limit]), qs.filter(read_at__isnull=True).count()


def unread_count(borrower: Borrower) -> int:
    model = _adapters().inbox_model()
    return owned(borrower, model).filter(read_at__isnull=True).count() if model else 0


def complaints(borrower: Borrower) -> list:
    model = _adapters().complaint_model()
    if model is None:
        return []
    return list(owned(borrower, model).select_related("loan").order_by("-filed_on", "-pk")[:50])


def current_certificate(borrower: Borrower, loan: Loan):
    model = _adapters().certificate_model()
    if model is None:
        return None
    return owned(borrower, model).filter(loan=loan).exclude(status="superseded").order_by("-version").first()
