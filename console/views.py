"""Console pages: custom admin views reading summary tables (console.services.summaries) and small,
indexed, filtered slices of operational tables. No page counts a big table without a filter; lists are
capped (LIMIT) and counts are capped too ("1000+")."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console import charts
from console.exports import EXPORT_PERMISSION, export_response
from console.models import (
    DebitRunDay,
    DpdBucketMonth,
    MandateCancellationDay,
    RollRateMonth,
    SummaryRefresh,
)
from console.services.summaries import BUCKETS, table_exists
from servicing.services import audit

OPS, RISK, COLL = "console.view_console_operations", "console.view_console_risk", "console.view_console_collections"
LIST_LIMIT = 100
COUNT_CAP = 1000
SPIKE_MIN = 10  # fewer cancellations than this in a day never alert


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    perm: str
    view: object


def _model(label: str):
    """An other engineer's model, when it exists and is migrated; else None (the page says pending)."""
    try:
        model = apps.get_model(label)
    except LookupError:
        return None
    return model if table_exists(model._meta.db_table) else None


def capped_count(qs, cap: int = COUNT_CAP) -> str:
    n = qs[: cap + 1].count()
    return f"{cap}+" if n > cap else str(n)


def as_of(request) -> date:
    raw = request.GET.get("date")
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    return timezone.localdate()


def _refreshed(*names: str) -> list[SummaryRefresh]:
    return list(SummaryRefresh.objects.filter(name__in=names))


def _render(request, page: Page, context: dict, table: tuple[list, list] | None = None):
    if table is not None and request.GET.get("export") in ("csv", "xlsx"):
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        return export_response(table[0], table[1], request.GET["export"], page.slug, user=request.user)
    ctx = {**admin.site.each_context(request), "title": page.title, "page": page, "pages": visible_pages(request),
           "table": table, "can_export": request.user.has_perm(EXPORT_PERMISSION), **context}
    return TemplateResponse(request, f"console/{page.slug}.html", ctx)


def _pct(num: int, den: int) -> float | None:
    return round(100 * num / den, 1) if den else None


# ------------------------------------------------------------------------------ debit run


def debit_run(request, page):
    d = as_of(request)
    Batch = _model("servicing.DebitBatch")
    batches = list(Batch.objects.filter(business_date=d).select_related("channel").order_by("channel__code")) \
        if Batch else None
    rows = list(DebitRunDay.objects.filter(day__range=(d - timedelta(days=29), d)).values_list(
        "day", "channel", "bank_code", "status", "category", "debits", "amount"))
    today = [r for r in rows if r[0] == d]
    final = ("succeeded", "failed")
    by_bank = defaultdict(lambda: [0, 0, 0])
    by_cat = defaultdict(int)
    for _day, _ch, bank, st, cat, n, _amt in today:
        if st in final:
            by_bank[bank][0 if st == "succeeded" else 1] += n
        elif st == "unknown":
            by_bank[bank][2] += n
        if st == "failed":
            by_cat[cat or "unclassified"] += n
    bank_rows = [(b, s, f, u, _pct(s, s + f)) for b, (s, f, u) in sorted(by_bank.items())]
    days = [d - timedelta(days=i) for i in range(29, -1, -1)]
    per_day = defaultdict(lambda: [0, 0])
    for day, _ch, _b, st, _c, n, _a in rows:
        if st in final:
            per_day[day][0 if st == "succeeded" else 1] += n
    chart = charts.line_chart([f"{x:%m-%d}" for x in days],
                              {str(_("成功率")): [_pct(*per_day[x]) if sum(per_day[x]) else None for x in days]},
                              y_max=100)
    table = (["bank_code", "succeeded", "failed", "unknown", "success_rate_pct"], bank_rows)
    return _render(request, page, {"as_of": d, "batches": batches, "bank_rows": bank_rows,
                                   "categories": sorted(by_cat.items(), key=lambda kv: -kv[1]), "chart": chart,
                                   "pending": Batch is None, "refreshed": _refreshed("debit_runs")}, table)


# ------------------------------------------------------------------------------ exception queues


def _resolve(model_label: str, pk: int, user, note: str) -> bool:
    """Adapter: the debit engineer's resolve service when it exists, else a guarded state change + audit."""
    try:
        from servicing.services.debits.resolution import resolve_exception as fn
    except ImportError:
        fn = None
    Model = apps.get_model(model_label)
    obj = Model.objects.get(pk=pk)
    if fn is not None:
        if obj.status != "open":
            return False
        fn(obj, user=user, note=note)
        return True
    with transaction.atomic():
        n = Model.objects.filter(pk=pk, status="open").update(status="resolved", resolved_by=user,
                                                            resolved_at=timezone.now(), resolution_note=note[:300])
        if n:
            audit.record("exception.resolved", obj, actor=user, reason=note)
    return bool(n)


def _queue(request, page, label: str, order: list[str], columns: list[tuple[str, str]]):
    Model = _model(label)
    if Model is None:
        return _render(request, page, {"pending": True, "pending_model": label})
    if request.method == "POST":
        if not request.user.has_perm("console.resolve_exception"):
            raise PermissionDenied
        note = request.POST.get("note", "").strip()
        ids = [int(x) for x in request.POST.getlist("ids") if x.isdigit()][:LIST_LIMIT]
        if not note:
            messages.error(request, _("处理说明必填"))
        else:
            done = sum(_resolve(label, pk, request.user, note) for pk in ids)
            messages.success(request, _("已处理 %(n)d 条") % {"n": done})
        return HttpResponseRedirect(request.get_full_path())
    open_qs = Model.objects.filter(status="open")
    rows = list(open_qs.select_related("loan").order_by(*order)[:LIST_LIMIT])
    data = [[getattr(r, f) if not f.endswith("contract") else (r.loan.contract_no if r.loan_id else "")
             for f, _l in columns] for r in rows]
    table = ([f for f, _l in columns], data)
    return _render(request, page, {"rows": list(zip(rows, data, strict=True)), "columns": columns,
                                   "open_count": capped_count(open_qs),
                                   "can_resolve": request.user.has_perm("console.resolve_exception")}, table)


def reconciliation(request, page):
    return _queue(request, page, "servicing.ReconciliationException", ["-id"],
                  [("id", "#"), ("created_at", _("时间")), ("contract", _("合同号")), ("line_no", _("行号")),
                   ("reason_code", _("原因代码")), ("reason", _("原因"))])


def missed_debits(request, page):
    return _queue(request, page, "servicing.MissedDebitException", ["-business_date", "-id"],
                  [("id", "#"), ("business_date", _("业务日期")), ("contract", _("合同号")), ("reason", _("原因"))])


def incidents(request, page):
    Model = _model("servicing.Incident")
    if Model is None:
        return _render(request, page, {"pending": True, "pending_model": "servicing.Incident"})
    rows = list(Model.objects.select_related("channel").order_by("-id")[:50])
    data = [[r.reference, r.channel.code, r.title, r.status, r.window_start, r.window_end, r.waived_amount,
             (r.stats or {}).get("loans", "")] for r in rows]
    table = (["reference", "channel", "title", "status", "window_start", "window_end", "waived", "loans"], data)
    return _render(request, page, {"rows": data, "open_count": capped_count(Model.objects.filter(status="open"))},
                   table)


# ------------------------------------------------------------------------------ risk


def dpd(request, page):
    d = as_of(request)
    first = (d.replace(day=1) - timedelta(days=335)).replace(day=1)
    months = sorted({m for (m,) in DpdBucketMonth.objects.filter(month__gte=first).values_list("month")})
    cells = {(m, b): (n, p) for m, b, n, p in DpdBucketMonth.objects.filter(month__gte=first)
             .values_list("month", "bucket", "loans", "principal")}
    labels = [f"{m:%Y-%m}" for m in months]
    dist = charts.stacked_bars(labels, {b: [float(cells.get((m, b), (0, 0))[0]) for m in months]
                                        for b in BUCKETS if b != "closed"})
    rolls = defaultdict(int)
    for m, fb, tb, n in RollRateMonth.objects.filter(month__gte=first).values_list(
            "month", "from_bucket", "to_bucket", "loans"):
        rolls[(m, fb, tb)] += n
    steps = [("M0", "M1"), ("M1", "M2"), ("M2", "M3"), ("M3", "M3+")]
    roll_series = {}
    roll_rows = []
    for fb, tb in steps:
        vals = []
        for m in months:
            base = sum(v for (mm, f, _t), v in rolls.items() if mm == m and f == fb)
            vals.append(_pct(rolls.get((m, fb, tb), 0), base))
        roll_series[f"{fb}→{tb}"] = vals
    for i in range(len(months)):
        roll_rows.append([labels[i], *[roll_series[f"{a}→{b}"][i] for a, b in steps]])
    bucket_rows = [[labels[i], *[cells.get((m, b), (0, 0))[0] for b in BUCKETS]] for i, m in enumerate(months)]
    table = (["month", *BUCKETS], bucket_rows)
    return _render(request, page, {
        "dist_chart": dist, "roll_chart": charts.line_chart(labels, roll_series), "roll_rows": roll_rows,
        "roll_headers": [f"{a}→{b}" for a, b in steps], "bucket_rows": bucket_rows, "buckets": BUCKETS,
        "refreshed": _refreshed("dpd")}, table)


def settlement_notices(request, page):
    Model = _model("notices.SettlementKpiDay")
    if Model is None:
        return _render(request, page, {"pending": True, "pending_model": "notices.SettlementKpiDay"})
    d = as_of(request)
    rows = list(Model.objects.filter(day__range=(d - timedelta(days=59), d)).order_by("day"))
    chart = charts.line_chart([f"{r.day:%m-%d}" for r in rows],
                              {str(_("一个工作日内发送占比")): [r.share_within for r in rows]}, y_max=100)
    data = [[r.day, r.settlements, r.sent, r.within_one_business_day, r.share_within, r.avg_hours, r.max_hours]
            for r in reversed(rows)]
    table = (["day", "settlements", "sent", "within_1_business_day", "share_pct", "avg_hours", "max_hours"], data)
    return _render(request, page, {"chart": chart, "rows": data}, table)


# ------------------------------------------------------------------------------ collections


def promises(request, page):
    Model = _model("collections_app.PromiseToPay")
    if Model is None:
        return _render(request, page, {"pending": True, "pending_model": "collections_app.PromiseToPay"})
    d = as_of(request)
    qs = Model.objects.filter(status="pending", due_date=d)
    # walk the partial index (status = pending, due_date): every row has the same date, so no sort
    rows = list(qs.select_related("loan", "loan__borrower").order_by("due_date")[:LIST_LIMIT])
    data = [[r.loan.contract_no, r.loan.borrower.masked_name, r.amount, r.paid_amount, r.promised_on, r.due_date]
            for r in rows]
    table = (["contract_no", "borrower", "amount", "paid", "promised_on", "due_date"], data)
    return _render(request, page, {"as_of": d, "rows": data, "count": capped_count(qs)}, table)


def complaints(request, page):
    Model = _model("collections_app.Complaint")
    if Model is None:
        return _render(request, page, {"pending": True, "pending_model": "collections_app.Complaint"})
    d = as_of(request)
    qs = Model.objects.filter(status="open")
    rows = list(qs.select_related("loan").order_by("due_on", "id")[:LIST_LIMIT])
    data = [[r.reference, r.loan.contract_no, r.subject, r.filed_on, r.due_on, (r.due_on - d).days] for r in rows]
    table = (["reference", "contract_no", "subject", "filed_on", "due_on", "days_left"], data)
    return _render(request, page, {"as_of": d, "rows": data, "count": capped_count(qs),
                                   "overdue": capped_count(qs.filter(due_on__lt=d))}, table)


# ------------------------------------------------------------------------------ mandates


def spikes(counts: list[int], *, window: int = 28, k: float = 3.0, floor: int = SPIKE_MIN) -> set[int]:
    """Indexes of days whose count exceeds mean + k·sd of the `window` days before (and at least `floor`)."""
    out = set()
    for i, n in enumerate(counts):
        prior = counts[max(0, i - window):i]
        if len(prior) < 7 or n < floor:
            continue
        mean, sd = statistics.fmean(prior), statistics.pstdev(prior)
        if n > max(mean + k * sd, 2 * mean):
            out.add(i)
    return out


def mandate_cancellations(request, page):
    d = as_of(request)
    days = [d - timedelta(days=i) for i in range(59, -1, -1)]
    per = defaultdict(lambda: defaultdict(int))
    causes: set[str] = set()
    for day, cause, n in MandateCancellationDay.objects.filter(day__range=(days[0], d)).values_list(
            "day", "cause", "cancellations"):
        per[day][cause] += n
        causes.add(cause)
    totals = [sum(per[x].values()) for x in days]
    alert_idx = spikes(totals)
    causes_sorted = sorted(causes)
    chart = charts.stacked_bars([f"{x:%m-%d}" for x in days],
                                {c: [float(per[x].get(c, 0)) for x in days] for c in causes_sorted} or {"—": [0.0] * 60},
                                alert=alert_idx)
    data = [[x, totals[i], *[per[x].get(c, 0) for c in causes_sorted], "⚠" if i in alert_idx else ""]
            for i, x in reversed(list(enumerate(days)))]
    table = (["day", "total", *causes_sorted, "spike"], data)
    return _render(request, page, {"as_of": d, "chart": chart, "rows": data, "causes": causes_sorted,
                                   "alerts": [days[i] for i in sorted(alert_idx)],
                                   "today_alert": (len(days) - 1) in alert_idx,
                                   "refreshed": _refreshed("mandate_cancellations")}, table)


# ------------------------------------------------------------------------------ registry, index, urls


PAGES = (
    Page("debit-run", _("今日代扣"), OPS, debit_run),
    Page("reconciliation", _("对账差错队列"), OPS, reconciliation),
    Page("missed-debits", _("漏扣异常"), OPS, missed_debits),
    Page("incidents", _("渠道事故"), OPS, incidents),
    Page("dpd", _("逾期分布与迁徙率"), RISK, dpd),
    Page("promises", _("今日到期承诺"), COLL, promises),
    Page("complaints", _("投诉时限"), COLL, complaints),
    Page("settlement-notices", _("结清通知时效"), RISK, settlement_notices),
    Page("mandate-cancellations", _("代扣解约监控"), OPS, mandate_cancellations),
)


def visible_pages(request) -> list[Page]:
    return [p for p in PAGES if request.user.has_perm(p.perm)]


def _wrap(page: Page):
    def view(request):
        if not request.user.has_perm(page.perm):
            raise PermissionDenied
        return page.view(request, page)

    view.__name__ = f"console_{page.slug.replace('-', '_')}"
    return admin.site.admin_view(view)


def index(request):
    pages = visible_pages(request)
    if not pages:
        raise PermissionDenied
    ctx = {**admin.site.each_context(request), "title": _("运营控制台"), "pages": pages,
           "refreshed": list(SummaryRefresh.objects.all())}
    return TemplateResponse(request, "console/index.html", ctx)


def urls():
    return [path("console/", admin.site.admin_view(index), name="console-index"),
            *[path(f"console/{p.slug}/", _wrap(p), name=f"console-{p.slug}") for p in PAGES]]


def page_url(slug: str) -> str:
    return reverse(f"admin:console-{slug}")
