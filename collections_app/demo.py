"""Collections' part of `seed_demo`: cases in every stage, a queue per collector, promises kept and broken,
complaints (one overdue → red), a pending waiver, a repayment plan."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, User

from servicing import roles
from servicing.demo import DemoContext


def _user(ctx: DemoContext, name: str, role: str) -> User:
    user, created = User.objects.get_or_create(username=name, defaults={"is_staff": True})
    if created:
        user.set_password(ctx.password)
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=role))
    return user


def seed(ctx: DemoContext) -> None:
    from collections_app.models import CollectionCase, ContactPerson, EscalationRequest
    from collections_app.services.business_day import step
    from collections_app.services.cases import ensure_default_ladder, ensure_roles
    from collections_app.services.complaints import file_complaint
    from collections_app.services.work import (
        decide_hardship,
        make_promise,
        request_hardship,
        request_waiver,
    )
    from servicing.models import LoanProduct
    from servicing.services.business_day import run_business_day
    from servicing.services.loans import book_loan, get_or_create_borrower
    from servicing.services.payments import post_payment

    ensure_roles()
    ensure_default_ladder()
    d = ctx.as_of
    collectors = [_user(ctx, f"collector{i}", roles.COLLECTOR) for i in (1, 2)]
    supervisor = ctx.staff.get(roles.SUPERVISOR) or _user(ctx, "supervisor1", roles.SUPERVISOR)
    checker = _user(ctx, "supervisor2", roles.SUPERVISOR)
    product = LoanProduct.objects.get(code="car")

    # loans whose oldest instalment fell due 5, 12, 30, 75 days before the demo date → stages 1–4
    loans = []
    for k, dpd in enumerate((5, 12, 30, 75, 20, 25, 40)):
        due = d - timedelta(days=dpd)
        start = due - timedelta(days=31)
        borrower = get_or_create_borrower(name=f"催收演示{k}", id_number=f"44030119880808{k:04d}",
                                          phone=f"1350000{k:04d}")
        loans.append(book_loan(product=product, borrower=borrower, principal=Decimal("24000"), months=12,
                               start=start, repayment_day=due.day if due.day <= 28 else 28))
    ContactPerson.objects.get_or_create(borrower=loans[0].borrower, name="王芳", defaults={
        "relation": "配偶", "phone": "13600000000"})
    week_ago = d - timedelta(days=7)
    run_business_day(week_ago)
    cases = {c.loan_id: c for c in CollectionCase.objects.filter(loan__in=loans)}
    for i, case in enumerate(cases.values()):
        case.assigned_to = collectors[i % 2]
        case.save(update_fields=["assigned_to"])
    promise_loans = [lo for lo in loans if lo.pk in cases][:2]
    if len(promise_loans) == 2:
        kept_case, broken_case = cases[promise_loans[0].pk], cases[promise_loans[1].pk]
        make_promise(case=kept_case, amount="300", due_date=d - timedelta(days=3), actor=kept_case.assigned_to,
                     on_date=week_ago)
        post_payment(loan=promise_loans[0], amount=Decimal("300"), channel="counter",
                     value_date=d - timedelta(days=4), reference=f"DEMO-PTP-{promise_loans[0].pk}")
        make_promise(case=broken_case, amount="500", due_date=d - timedelta(days=2), actor=broken_case.assigned_to,
                     on_date=week_ago)
    run_business_day(d)
    open_cases = list(CollectionCase.objects.filter(loan__in=loans, status__in=["open", "paused"]).order_by("dpd"))
    legal = [c for c in open_cases if c.stage == 3 and c.dpd > 60]
    for req in EscalationRequest.objects.filter(case__in=legal, status="pending"):
        from collections_app.services.cases import decide_escalation

        decide_escalation(request=req, approve=True, actor=supervisor, on_date=d)
    # a complaint past its clock (red in the admin) and one within it
    if len(open_cases) >= 6:
        file_complaint(loan=open_cases[4].loan, subject="扣款后仍显示逾期", description="演示：超期未答复的投诉",
                       on_date=d - timedelta(days=20), filed_by=checker)
        file_complaint(loan=open_cases[5].loan, subject="催收电话频繁", description="演示：处理中的投诉",
                       on_date=d - timedelta(days=2), filed_by=checker)
        # a pending waiver (maker: a collector; checker: a supervisor, in the admin)
        case = open_cases[3]
        inst = case.loan.instalments.filter(status="overdue").order_by("due_date").first()
        if inst is not None and inst.outstanding("penalty") > 0:
            request_waiver(case=case, instalment=inst, component="penalty", amount=inst.outstanding("penalty"),
                           reason="演示：首次逾期，申请减免罚息", actor=case.assigned_to, on_date=d)
        # a repayment plan, approved: the loan is re-aged into 6 instalments and the case pauses
        plan_case = open_cases[2]
        arr = request_hardship(case=plan_case, kind="plan", n_instalments=6, reason="演示：收入下降",
                               actor=plan_case.assigned_to, on_date=d)
        decide_hardship(arrangement=arr, approve=True, actor=supervisor, on_date=d)
    step(d)
    stages = sorted({c.stage for c in CollectionCase.objects.filter(loan__in=loans, status__in=["open", "paused"])})
    base = "/admin/collections_app/"
    ctx.lines += [
        f"催收：{len(open_cases)} 个案件（阶段 {', '.join(map(str, stages))}），催收员 collector1 / collector2、"
        f"主管 supervisor2 登录密码 {ctx.password}",
        f"  案件队列 {base}collectioncase/ · 投诉（超期标红）{base}complaint/ · 待审批减免 {base}waiverrequest/",
        f"  还款计划 {base}hardshiparrangement/ · 承诺还款 {base}promisetopay/ · API /api/v1/collections/cases/",
    ]
