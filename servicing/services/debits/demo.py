"""Demo data for the debit pipeline: a newcomer sees failed debits without building them.

`seed(ctx)` uses the loans the core part booked (ctx.loans) plus a few of its own: it runs a batch on the
std channel, imports a result file with every category (retries scheduled, a suspended and a cancelled
mandate, an unknown debit, an unmapped code), a row with a bad amount (an open reconciliation exception),
a missed debit found by the sweep, a succeeded debit the bank returned later (退回: payment reversed, the
borrower owes again), and a small manual incident with its apology notices.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction

from servicing.domain.money import format_amount
from servicing.models import Channel, Debit, Loan, LoanProduct
from servicing.services import reference_data
from servicing.services.accrual import bring_loan_to
from servicing.services.loans import book_loan, get_or_create_borrower
from servicing.services.mandates import activate_mandate, cancel_mandate, sign_mandate

from .batches import create_debit_batch, export_debit_batch
from .business_day import sweep
from .incidents import open_incident
from .resolution import return_debit
from .results import import_debit_results

CATEGORY_ROWS = [("SUCCESS", "00", "交易成功"), ("FAILED", "64", "余额不足"), ("FAILED", "81", "超过日累计限额"),
                 ("FAILED", "33", "交易金额超限"), ("FAILED", "63", "卡状态不正确"), ("FAILED", "66", "户名不符"),
                 ("FAILED", "40", "未签约"), ("FAILED", "61", "卡号无效"), ("PENDING", "04", "交易状态未明"),
                 ("SUCCESS", "74", "扣款成功，销账未知"), ("FAILED", "02", "系统维护"), ("FAILED", "10", "格式错误"),
                 ("FAILED", "ZZ", "其他错误")]


def _demo_loan(ctx, i: int, channel: Channel, *, mandate: bool = True):
    names = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许"
    name = f"{names[i % len(names)]}演示{i}"
    borrower = get_or_create_borrower(name=name, id_number=f"44030119850101{9000 + i:04d}",
                                      phone=f"137{90000000 + i:08d}")
    start = (ctx.as_of - timedelta(days=31)).replace(day=1)
    loan = book_loan(product=LoanProduct.objects.get(code="credit_line"), borrower=borrower,
                     principal=Decimal(3000 + 500 * i), months=6, start=start, repayment_day=ctx.as_of.day)
    if mandate:
        m = sign_mandate(loan=loan, channel=channel, account_no=f"6222{880000000000 + i:012d}",
                         account_name=borrower.name, bank_code="ICBC")
        activate_mandate(m)
    return loan


def seed(ctx) -> None:
    reference_data.ensure_channels()
    channel = Channel.objects.get(code="std")
    d = ctx.as_of
    if Debit.objects.filter(batch__business_date=d, batch__channel=channel).exists():
        ctx.lines.append("debits: demo batch already present")
        return
    loans = [_demo_loan(ctx, i, channel) for i in range(len(CATEGORY_ROWS) + 2)]
    # the insufficient-funds borrower reads English: the failure notice comes in English (reason, next step)
    english = loans[1].borrower
    english.language = "en"
    english.save(update_fields=["language"])
    returned = _demo_loan(ctx, 41, channel)
    missed = _demo_loan(ctx, 40, channel)
    cancel_mandate(missed.mandates.get(), cause="borrower", reason="demo: cancelled the day before")
    # booked after today's business day: bill what falls due today, as the day does before the cut-off, so the
    # file's payments post set-based and share one journal entry (批量入账)
    with transaction.atomic():
        for loan in Loan.objects.select_for_update().filter(pk__in=[x.pk for x in (*loans, returned)]).order_by("pk"):
            bring_loan_to(loan, d)
    batch = create_debit_batch(d, channel).batch
    export_debit_batch(batch, Path(settings.MEDIA_ROOT) / "debit_files" / f"{batch.reference}.csv")
    debits = {x.loan_id: x for x in Debit.objects.filter(batch=batch)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["reference", "amount", "status", "code", "message", "settled_on", "channel_txn_id"])
    for loan, (status, code, message) in zip(loans, CATEGORY_ROWS, strict=False):
        debit = debits[loan.pk]
        ok = status == "SUCCESS"
        w.writerow([debit.reference, format_amount(debit.amount), status, code, message, d.isoformat() if ok else "",
                    f"UP{debit.pk}" if ok else ""])
    back = debits[returned.pk]
    w.writerow([back.reference, format_amount(back.amount), "SUCCESS", "00", "交易成功", d.isoformat(), f"UP{back.pk}"])
    garbage = debits[loans[len(CATEGORY_ROWS)].pk]
    w.writerow([garbage.reference, "12,3x", "SUCCESS", "00", "交易成功", d.isoformat(), ""])
    summary = import_debit_results(buf.getvalue().encode("utf-8-sig"), channel=channel, name="demo-result.csv")
    return_debit(Debit.objects.get(pk=back.pk), on_date=d, reason="演示：付款行退回（账户已冻结）")
    stats = sweep(d)
    incident = open_incident(channel=channel, window_start=d, title="演示：银行系统维护导致代扣失败",
                             debits=list(Debit.objects.filter(batch=batch, category="channel_down")))
    ctx.lines += [
        f"debits: batch {batch.reference} ({summary['rows']} results: {summary['succeeded']} succeeded, "
        f"{sum(summary['failed'].values())} failed, {summary['unknown']} unknown, {summary['exceptions']} exception)",
        f"debits: unmapped codes {summary['unmapped_codes']}; missed debits found by the sweep: {stats['missed']}; "
        f"debit {back.reference} returned by the bank after success",
        f"debits: incident {incident.reference}; see /admin/servicing/debit/ and /admin/servicing/incident/",
    ]
