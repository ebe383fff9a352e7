"""Reads for the self-service pages. Everything a borrower sees goes through :func:`owned` /
:func:`get_owned`, which always filter by the borrower: another borrower's id is a 404, never a leak.
The two busiest pages (home, loan) are one SQL statement each, keyed by the logged-in user and filtering
the loan by that user's borrower in the statement itself (``l.borrower_id = b.id``): see the end of
this module.

Query counts are constant in the size of the borrower's history: each page reads its rows with a fixed
number of queries (prefetches, or one JSON document), and all sums are done in Python over those rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Model, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from servicing.domain.allocation import COMPONENTS
from servicing.domain.money import ZERO, format_cny
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
        return _(STATE_LABELS[self.state])


STATE_LABELS = {"paid": gettext_noop("已还清"), "overdue": gettext_noop("已逾期"), "due_today": gettext_noop("今日到期"),
                "partially_paid": gettext_noop("部分已还"), "upcoming": gettext_noop("未到期")}


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


def payment_lines(payment: Payment) -> list[tuple[str, Decimal]]:
    """What one payment paid, per instalment and component, plus what went to the credit balance."""
    order = payment.loan.product.order()
    return _lines(((a.instalment.seq, c, amount)
                   for a in payment.allocations.select_related("instalment").order_by("instalment__seq")
                   for c, amount in a.parts(order).items()), payment.credited_amount)


def _lines(allocations, credited: Decimal) -> list[tuple[str, Decimal]]:
    """(seq, component, amount) in the order paid → one line per instalment and component, plus the credit
    balance line."""
    per: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for seq, c, amount in allocations:
        per[(seq, c)] += amount
    lines = [(_("第%(seq)s期 %(component)s") % {"seq": seq, "component": component_label(c)}, amount)
             for (seq, c), amount in per.items()]
    if credited > ZERO:
        lines.append((_("转入挂账余额（下期自动抵扣）"), credited))
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


# --------------------------------------------------------------------------- the home and loan pages, one query each
#
# The two busiest pages read everything they show in ONE statement: the borrower (by the logged-in user),
# the unread count and a JSON document of the loan(s) built by PostgreSQL. The document's text is the
# complete input of the page body (together with the date, the language and the business calendar), so
# it doubles as the key of the rendered fragment (portal/fragments.py): any change to the loan, an
# instalment, a payment, an allocation, a debit, a retry state, a mandate or the product changes the
# text, and with it the key. Figures are computed by the same `loan_figures` / `describe_debit` code as
# the other pages, over light row objects that borrow the models' own methods.
# Statements start with SELECT (not WITH) so pghistory's middleware leaves them alone.


class _Product:
    __slots__ = ("name", "grace_days", "grace_end_rolls_to_working_day", "penalty_markup_pct", "compound_interest")


class _Loan:
    """The loan columns the pages use; the methods are Loan's own."""

    __slots__ = ("pk", "id", "contract_no", "principal", "term_months", "status", "settled_on", "credit_balance",
                 "annual_rate_pct", "fee_rate_pct", "disbursed_on", "product")
    annual_rate = Loan.annual_rate
    fee_rate = Loan.fee_rate
    masked_contract_no = Loan.masked_contract_no


_INST_MONEY = tuple(f"{c}_{k}" for c in ("principal", "interest", "fee") for k in ("due", "paid", "waived")) + tuple(
    f"{c}_{k}" for c in ("penalty", "compound") for k in ("accrued", "paid", "waived"))


class _Instalment:
    """An instalment row; outstanding/total_* are Instalment's own methods."""

    __slots__ = ("seq", "due_date", "status", "penalty_accrued_through", *_INST_MONEY)
    outstanding = Instalment.outstanding
    total_due = Instalment.total_due
    total_paid = Instalment.total_paid
    total_outstanding = Instalment.total_outstanding


class _Mandate:
    __slots__ = ("status", "account_no")
    masked_account = Mandate.masked_account

    def get_status_display(self) -> str:
        return str(MandateStatus(self.status).label)


def _table(model) -> str:
    return model._meta.db_table


def _sql_parts() -> dict[str, str]:
    from servicing.models import Debit, DebitBatch, LoanProduct, RetryState

    inbox = _adapters().inbox_model()
    cert = _adapters().certificate_model()
    live = ", ".join(f"'{s}'" for s in LIVE_MANDATE_STATUSES)
    rank = " ".join(f"WHEN '{s}' THEN {n}" for n, s in enumerate(
        (MandateStatus.ACTIVE, MandateStatus.SUSPENDED, MandateStatus.PENDING)))
    inst_cols = ", ".join(f"i.{c}" for c in ("seq", "due_date", "status", "penalty_accrued_through", *_INST_MONEY))
    return {
        "borrower_cols": ", ".join(f"b.{f.column}" for f in Borrower._meta.concrete_fields),
        "borrower": _table(Borrower),
        "unread": (f"(SELECT count(*) FROM {_table(inbox)} m WHERE m.borrower_id = b.id AND m.read_at IS NULL)"
                   if inbox else "0"),
        "loan": _table(Loan), "product": _table(LoanProduct),
        # one loan: [loan columns…, product columns…, [instalments], mandate or null]
        "loan_row": f"""json_build_array(
            l.id, l.contract_no, l.principal, l.term_months, l.status, l.settled_on, l.credit_balance,
            l.annual_rate_pct, l.fee_rate_pct, l.disbursed_on,
            p.name, p.grace_days, p.grace_end_rolls_to_working_day, p.penalty_markup_pct, p.compound_interest,
            (SELECT json_agg(json_build_array({inst_cols}) ORDER BY i.due_date, i.seq)
               FROM {_table(Instalment)} i WHERE i.loan_id = l.id AND i.status <> '{InstalmentStatus.SUPERSEDED}'),
            (SELECT json_build_array(m.status, m.account_no) FROM {_table(Mandate)} m
              WHERE m.loan_id = l.id AND m.status IN ({live})
              ORDER BY CASE m.status {rank} END, m.signed_at DESC LIMIT 1))""",
        # every payment, newest first, with what it paid per instalment and component (in the product's order)
        "payments": f"""(SELECT json_agg(json_build_array(
                pm.id, pm.value_date, pm.channel, pm.amount, pm.credited_amount, extract(epoch FROM pm.created_at),
                (SELECT json_agg(json_build_array(i.seq, x.component, x.amount)
                                 ORDER BY i.seq, {LoanProduct.order_position_sql("p", "x.component")})
                   FROM {_table(Allocation)} a JOIN {_table(Instalment)} i ON i.id = a.instalment_id
                  CROSS JOIN LATERAL (VALUES {", ".join(f"('{c}', a.{c})" for c in COMPONENTS)}) AS x(component, amount)
                  WHERE a.payment_id = pm.id AND x.amount <> 0))
              ORDER BY pm.value_date DESC, pm.id DESC)
             FROM {_table(Payment)} pm WHERE pm.loan_id = l.id)""",
        # every debit, newest first, with the retry state of its instalment
        "debits": f"""(SELECT json_agg(json_build_array(
                d.id, COALESCE(bt.business_date, d.due_date), d.status, d.category, d.attempt, d.amount,
                extract(epoch FROM d.created_at), rs.id, rs.status, rs.next_retry_on, rs.last_debit_id)
              ORDER BY d.id DESC)
             FROM {_table(Debit)} d LEFT JOIN {_table(DebitBatch)} bt ON bt.id = d.batch_id
             LEFT JOIN {_table(RetryState)} rs ON rs.instalment_id = d.instalment_id AND rs.loan_id = l.id
            WHERE d.loan_id = l.id)""",
        "certificate": (f"""(SELECT json_build_array(c.id, c.number, c.verification_code) FROM {_table(cert)} c
              WHERE c.loan_id = l.id AND l.status = '{LoanStatus.SETTLED}' AND c.status <> 'superseded'
              ORDER BY c.version DESC LIMIT 1)""" if cert else "NULL"),
    }


_SQL: dict[str, str] = {}


def _sql(which: str) -> str:
    if not _SQL:
        p = _sql_parts()
        head = f"SELECT {p['borrower_cols']}, {p['unread']}, "
        _SQL["home"] = head + f"""(SELECT json_agg({p['loan_row']} ORDER BY l.status, l.disbursed_on DESC, l.id)
              FROM {p['loan']} l JOIN {p['product']} p ON p.id = l.product_id WHERE l.borrower_id = b.id)::text
            FROM {p['borrower']} b WHERE b.{{key}} = %s"""
        _SQL["loan"] = head + f"""(SELECT json_build_array({p['loan_row']}, {p['payments']}, {p['debits']},
                {p['certificate']})
              FROM {p['loan']} l JOIN {p['product']} p ON p.id = l.product_id
             WHERE l.id = %s AND l.borrower_id = b.id)::text
            FROM {p['borrower']} b WHERE b.{{key}} = %s"""
    return _SQL[which]


def _prepared_cursor_class():
    import psycopg

    class PreparedCursor(psycopg.Cursor):
        """Server-side binding, prepared on first use (kept per connection by psycopg): planning these
        statements costs PostgreSQL more than running them (about 1 ms against 0.5 ms)."""

        def execute(self, query, params=None, *, prepare=True, binary=None):
            return super().execute(query, params, prepare=prepare, binary=binary)

    return PreparedCursor


_PREPARED: list = []


def prepared_cursor(using: str = "default"):
    """Django's cursor (error wrapping, execute wrappers, query logging) over a cursor whose statements
    PostgreSQL prepares once per connection. Only for statements with a fixed text."""
    from django.db import connections

    connection = connections[using]
    if not _PREPARED:
        _PREPARED.append(_prepared_cursor_class())
    cur = connection.cursor()
    raw = connection.connection
    if connection.vendor == "postgresql" and hasattr(raw, "prepare_threshold"):  # psycopg 3
        if raw.prepare_threshold is None:  # Django's default turns preparing off altogether: allow it for
            raw.prepare_threshold = 2**31  # prepare=True only (nothing else is prepared automatically)
        cur.cursor.close()
        cur.cursor = _PREPARED[0](raw)
    return cur


def _fetch(which: str, key: str, params: list) -> tuple[Borrower | None, int, str | None]:
    from django.db import connection

    with prepared_cursor() as cur:
        cur.execute(_sql(which).format(key=key), params)
        row = cur.fetchone()
    if row is None:
        return None, 0, None
    names = [f.attname for f in Borrower._meta.concrete_fields]
    n = len(names)
    return Borrower.from_db(connection.alias, names, row[:n]), row[n], row[n + 1]


def _date(v):
    return date.fromisoformat(v) if v else None


def _load(text: str):
    import json

    return json.loads(text, parse_float=Decimal)


def _light_loan(r: list) -> tuple[_Loan, list[_Instalment], _Mandate | None]:
    loan = _Loan()
    (loan.id, loan.contract_no, loan.principal, loan.term_months, loan.status, settled_on, loan.credit_balance,
     loan.annual_rate_pct, loan.fee_rate_pct, disbursed_on) = r[:10]
    loan.pk = loan.id
    loan.settled_on, loan.disbursed_on = _date(settled_on), _date(disbursed_on)
    product = loan.product = _Product()
    (product.name, product.grace_days, product.grace_end_rolls_to_working_day, product.penalty_markup_pct,
     product.compound_interest) = r[10:15]
    instalments = []
    for v in r[15] or ():
        inst = _Instalment()
        inst.seq, due, inst.status, through = v[:4]
        inst.due_date, inst.penalty_accrued_through = date.fromisoformat(due), _date(through)
        for name, amount in zip(_INST_MONEY, v[4:], strict=True):
            setattr(inst, name, amount)
        instalments.append(inst)
    mandate = None
    if r[16]:
        mandate = _Mandate()
        mandate.status, mandate.account_no = r[16]
    return loan, instalments, mandate


def _home_figures(doc: str | None, as_of: date) -> list[LoanFigures]:
    out = []
    for r in _load(doc) if doc else ():
        loan, instalments, mandate = _light_loan(r)
        out.append(loan_figures(loan, instalments, as_of, mandate))
    out.sort(key=lambda f: (f.is_settled, -(f.overdue_amount > 0), f.next_due_date or date.max))
    return out


@dataclass
class HomePage:
    borrower: Borrower
    unread: int
    doc: str | None  # the loans as PostgreSQL's JSON text: the fragment key

    def loans(self, as_of: date) -> list[LoanFigures]:
        return _home_figures(self.doc, as_of)


def home_page(user_id: int) -> HomePage | None:
    """The home page's data for a logged-in user (1 query); None when the user is not a borrower."""
    borrower, unread, doc = _fetch("home", "user_id", [user_id])
    return None if borrower is None else HomePage(borrower, unread, doc)


def home(borrower: Borrower, as_of: date) -> list[LoanFigures]:
    """Each loan with its status, next due date and amount, and the amount that cures it (1 query)."""
    return _home_figures(_fetch("home", "id", [borrower.pk])[2], as_of)


@dataclass
class LoanPage:
    borrower: Borrower
    unread: int
    doc: str | None  # the loan as PostgreSQL's JSON text (None: not this borrower's loan): the fragment key

    def build(self, as_of: date) -> dict:
        """The loan page body's context: figures, timeline, certificate."""
        loan_row, payments, debits, cert = _load(self.doc)
        loan, instalments, mandate = _light_loan(loan_row)
        figures = loan_figures(loan, instalments, as_of, mandate)
        items = _payment_rows_items(payments or ()) + _debit_rows_items(debits or (), loan)
        items.sort(key=lambda i: i.sort_key, reverse=True)
        certificate = None
        if cert and figures.is_settled:
            certificate = {"pk": cert[0], "number": cert[1], "verification_code": cert[2]}
        from django.urls import reverse

        from . import services

        return {"loan": loan, "f": figures, "schedule_html": schedule_html(figures),
                "timeline_html": timeline_html(figures, items, reverse("portal:pay", args=[loan.pk])),
                "certificate": certificate, "verify_path": services.verify_path(cert[2]) if certificate else ""}


def loan_page(user_id: int, loan_id: int) -> LoanPage | None:
    """The loan page's data for a logged-in user (1 query); None when the user is not a borrower.
    ``doc`` is None when the loan is not theirs (→ 404)."""
    borrower, unread, doc = _fetch("loan", "user_id", [loan_id, user_id])
    return None if borrower is None else LoanPage(borrower, unread, doc)


def _payment_rows_items(rows) -> list[TimelineItem]:
    from servicing.models.payments import PaymentChannel

    received = _("已入账")
    items = []
    for _pk, value_date, channel, amount, credited, created, per in rows:
        d = date.fromisoformat(value_date)
        items.append(TimelineItem(
            kind="payment", at=d, sort_key=(d, 1, created), amount=amount,
            title=_("还款 · %(channel)s") % {"channel": PaymentChannel(channel).label},
            result=received, tone="ok", lines=_lines(((seq, c, a) for seq, c, a in per or ()), credited)))
    return items


def _debit_rows_items(rows, loan: _Loan) -> list[TimelineItem]:
    from types import SimpleNamespace

    from django.urls import reverse

    items = []
    for pk, at, status, category, attempt, amount, created, rs_id, rs_status, rs_next, rs_last in rows:
        at = date.fromisoformat(at)
        debit = SimpleNamespace(pk=pk, batch_id=True, batch=SimpleNamespace(business_date=at), due_date=at,
                                status=status, category=category)
        rs = None if rs_id is None else SimpleNamespace(status=rs_status, next_retry_on=_date(rs_next),
                                                        last_debit_id=rs_last)
        v = describe_debit(debit, rs, loan)
        items.append(TimelineItem(
            kind="debit", at=v.at, sort_key=(v.at, 0, created), amount=amount,
            title=_("自动扣款 · 第%(n)s次") % {"n": attempt + 1} if attempt else _("自动扣款"),
            result=v.result, tone=v.tone, next_step=v.next_step, pay_now=v.pay_now,
            url=reverse("portal:debit", args=[pk])))
    return items


# The loan page's two lists (a mortgage has 360 instalments, and as many payments over the years) are built
# here as HTML: Django's template loop costs ~50 µs a row, these ~3 µs. The markup is the one
# _loan_body.html had inside its loops; every value is escaped as the template would.


def schedule_html(figures: LoanFigures) -> str:
    """The schedule's table rows: due date, amount (paid or still due, penalty included), state."""
    labels = {s: escape(_(label)) for s, label in STATE_LABELS.items()}
    incl_penalty = escape(_("含罚息"))
    rows = []
    for r in figures.rows:
        amount = escape(format_cny(r.paid if r.state == "paid" else r.outstanding))
        penalty = (f'<br><span class="small">{incl_penalty} {escape(format_cny(r.penalty))}</span>'
                   if r.penalty else "")
        rows.append(f'\n    <tr class="st-{r.state}"><td>{r.seq}</td><td>{r.due_date.isoformat()}</td>\n'
                    f'      <td class="num">{amount}{penalty}</td>\n'
                    f'      <td><span class="pill {r.state}">{labels[r.state]}</span></td></tr>\n    ')
    return mark_safe("".join(rows))  # noqa: S308 - every value escaped above


def timeline_html(figures: LoanFigures, items: list[TimelineItem], pay_url: str) -> str:
    """Debit attempts and payments, newest first: when, what, result, what happens next, what it paid."""
    pay_now = f'<a class="btn small primary" href="{escape(pay_url)}">{escape(_("立即还款"))}</a>'
    details = escape(_("详情"))
    settled = figures.is_settled
    out = []
    for i in items:
        next_step = f'<p class="next">{escape(i.next_step)}</p>' if i.next_step else ""
        lines = ("<ul class=\"lines\">" + "".join(f"<li>{escape(label)} <span>{escape(format_cny(a))}</span></li>"
                                                  for label, a in i.lines) + "</ul>") if i.lines else ""
        link = f'<a class="small" href="{escape(i.url)}">{details}</a>' if i.url else ""
        out.append(f'\n    <li class="{i.kind} {i.tone}" data-testid="timeline-{i.kind}">\n'
                   f'      <div class="row"><span>{i.at.isoformat()} · {escape(i.title)}</span>'
                   f'<strong class="amount">{escape(format_cny(i.amount))}</strong></div>\n'
                   f'      <p class="result">{escape(i.result)}</p>\n'
                   f'      {next_step}\n      {lines}\n      {pay_now if i.pay_now and not settled else ""}\n'
                   f'      {link}\n    </li>\n  ')
    return mark_safe("".join(out))  # noqa: S308 - every value escaped above
