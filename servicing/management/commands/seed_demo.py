"""Demo data a newcomer can click through: every product, staff per role, borrowers with logins, loans with
mandates and a history of on-time, late, missed and early payments. Same --seed and --as-of → same data."""

from __future__ import annotations

import importlib
import random
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from servicing import roles
from servicing.demo import DemoContext
from servicing.management.base import RepayCommand, bad_usage, date_arg, positive_int_arg
from servicing.models import Channel, Loan, LoanProduct
from servicing.selectors import quote_payoff
from servicing.services import reference_data
from servicing.services.business_day import run_business_day
from servicing.services.loans import book_loan, get_or_create_borrower
from servicing.services.mandates import activate_mandate, sign_mandate
from servicing.services.payments import PaymentError, post_payment

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
         "秀兰", "霞", "平", "刚", "桂英", "建华", "晓东", "海燕"]
BANKS = [("ICBC", "6222"), ("CCB", "6227"), ("ABC", "6228"), ("BOC", "6217"), ("CMB", "6225")]
STAFF = [
    ("ops", roles.OPERATIONS, "运营 小王"),
    ("collector1", roles.COLLECTOR, "催收员 李娜"),
    ("collector2", roles.COLLECTOR, "催收员 周强"),
    ("supervisor", roles.SUPERVISOR, "主管 陈静"),
    ("auditor", roles.AUDITOR, "审计 刘洋"),
    ("admin", roles.ADMIN, "管理员"),
]
# (product code, principal range in yuan, months choices, weight)
MIX = [
    ("mortgage", (300_000, 1_500_000), [120, 240, 360], 2),
    ("car", (50_000, 300_000), [12, 24, 36, 60], 3),
    ("credit_line", (2_000, 50_000), [3, 6, 12], 4),
    ("instalment", (500, 20_000), [3, 6, 12], 3),
]
# how a borrower behaves: on time, late, stops paying, pays off early, overpays
PROFILES = [("on_time", 66), ("late", 10), ("delinquent", 12), ("payoff", 7), ("overpay", 5)]


def id_number(rng: random.Random, birth: date) -> str:
    body = f"{rng.choice(['110101', '310104', '440305', '510107', '330106'])}{birth:%Y%m%d}{rng.randint(100, 999)}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
    return body + check


class Command(RepayCommand):
    help = "Create demo data (products, staff per role, borrowers with logins, loans with history) and print logins"

    def add_arguments(self, parser):
        parser.add_argument("--loans", type=positive_int_arg, default=60)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--as-of", type=date_arg, default=None, help="business date (default: today, Shanghai)")

    def handle(self, *args, **o):
        as_of = o["as_of"] or timezone.localdate()
        if as_of.year < 2005:
            raise bad_usage(f"as-of: {as_of} is before the calendar the product knows")
        rng = random.Random(o["seed"])
        ctx = DemoContext(as_of=as_of, rng=rng)
        if Loan.objects.filter(contract_no__startswith="DM").exists():
            self.stderr.write("demo data already present; printing the logins")
            ctx.staff = {u.username: u for u in get_user_model().objects.filter(username__in=[s[0] for s in STAFF])}
        else:
            with transaction.atomic():
                reference_data.ensure()
                roles.ensure_roles()
                self._staff(ctx)
                self._loans(ctx, o["loans"])
            run_business_day(as_of)
            for module in ("notices.demo", "servicing.services.debits.demo", "collections_app.demo"):
                try:
                    part = importlib.import_module(module)
                except ModuleNotFoundError:
                    continue
                part.seed(ctx)
            run_business_day(as_of)
            from console.services.summaries import refresh_all

            refresh_all(as_of)  # the console dashboards read summary tables that workers refresh
        self._schedules()
        self._print(ctx)

    def _schedules(self) -> None:
        """The periodic work django-q2 runs: business day and debit cut-offs, notice dispatch, dashboards."""
        from console.tasks import ensure_schedule as console_schedule
        from notices.tasks import ensure_schedules as notice_schedules
        from servicing.tasks import ensure_schedules as servicing_schedules

        servicing_schedules()
        notice_schedules()
        console_schedule()

    def _staff(self, ctx: DemoContext) -> None:
        User = get_user_model()
        for username, role, full_name in STAFF:
            user, created = User.objects.get_or_create(username=username, defaults={
                "is_staff": True, "first_name": full_name, "is_superuser": role == roles.ADMIN,
                "email": f"{username}@repaydesk.example"})
            if created:
                user.set_password(ctx.password)
                user.save()
            user.groups.add(Group.objects.get(name=role))
            ctx.staff[username] = user

    def _loans(self, ctx: DemoContext, n: int) -> None:
        rng, as_of = ctx.rng, ctx.as_of
        User = get_user_model()
        products = {p.code: p for p in LoanProduct.objects.all()}
        password_hash = make_password(ctx.password)  # hashing is slow by design: once for all demo borrowers
        channels = list(Channel.objects.order_by("code"))
        std = next(c for c in channels if c.code == "std")
        for i in range(n):
            code, (lo, hi), terms, _ = rng.choices(MIX, weights=[m[3] for m in MIX])[0]
            product = products[code]
            months = rng.choice([t for t in terms if product.min_months <= t <= product.max_months])
            principal = Decimal(rng.randrange(lo, hi, 100 if hi > 10_000 else 10))
            start = as_of - timedelta(days=rng.randint(35, 400))
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            birth = date(rng.randint(1965, 2002), rng.randint(1, 12), rng.randint(1, 28))
            phone = f"18{rng.randint(6, 9)}{i:08d}"  # 186–189: other demo parts use 135/137 numbers
            borrower = get_or_create_borrower(name=name, id_number=id_number(rng, birth), phone=phone)
            if borrower.user is None:
                user = User.objects.create(username=phone, password=password_hash, first_name=name)
                borrower.user = user
                borrower.save(update_fields=["user"])
                if len(ctx.borrower_logins) < 6:
                    ctx.borrower_logins.append((phone, ctx.password, name))
            loan = book_loan(product=product, borrower=borrower, principal=principal, months=months, start=start,
                             contract_no=f"DM{start:%Y%m%d}{i:05d}")
            if rng.random() < 0.9:
                bank, prefix = rng.choice(BANKS)
                channel = std if rng.random() < 0.8 else rng.choice(channels)
                mandate = sign_mandate(loan=loan, channel=channel, account_no=f"{prefix}{rng.randint(10**11, 10**12 - 1)}",
                                       account_name=name, bank_code=bank,
                                       single_limit=Decimal("50000.00") if rng.random() < 0.1 else None)
                activate_mandate(mandate)
            ctx.loans.append(loan)
            self._history(ctx, loan)

    def _history(self, ctx: DemoContext, loan: Loan) -> None:
        rng, as_of = ctx.rng, ctx.as_of
        profile = rng.choices([p for p, _ in PROFILES], weights=[w for _, w in PROFILES])[0]
        instalments = list(loan.instalments.order_by("seq"))
        stop_at = rng.randint(0, max(0, len(instalments) - 1)) if profile == "delinquent" else None
        for n, inst in enumerate(instalments):
            if inst.due_date >= as_of - timedelta(days=1):
                break
            if stop_at is not None and n >= stop_at:
                break
            if profile == "payoff" and n == 2:
                day = inst.due_date + timedelta(days=5)
                if day < as_of:
                    quote = quote_payoff(loan, day)
                    post_payment(loan=loan, amount=quote.total, channel="transfer", value_date=day,
                                 reference=f"DEMO-{loan.contract_no}-PAYOFF", prepay="payoff")
                return
            pay_day = inst.due_date + timedelta(days=8 if profile == "late" and rng.random() < 0.5 else 0)
            if pay_day >= as_of:
                break
            inst.refresh_from_db()
            amount = inst.total_outstanding + (Decimal("100.00") if profile == "overpay" and n == 0 else 0)
            if profile == "late" and pay_day > inst.due_date:
                amount = quote_late(loan, inst, pay_day)
            if amount <= 0:
                continue
            channel = "bank" if loan.mandates.filter(status="active").exists() else "transfer"
            try:
                post_payment(loan=loan, amount=amount, channel=channel, value_date=pay_day,
                             reference=f"DEMO-{loan.contract_no}-{inst.seq}")
            except PaymentError:
                break

    def _print(self, ctx: DemoContext) -> None:
        out = self.stdout.write
        out("")
        out("RepayDesk demo is ready.")
        out(f"  business date: {ctx.as_of}")
        out("  ops console:   http://127.0.0.1:8000/admin/")
        out("  self-service:  http://127.0.0.1:8000/")
        out("  API docs:      http://127.0.0.1:8000/api/docs/")
        out("")
        out(f"Staff logins (password: {ctx.password}):")
        for username, role, full_name in STAFF:
            out(f"  {username:<12} {role:<11} {full_name}")
        if ctx.borrower_logins:
            out("Borrower self-service logins (phone / password):")
            for phone, password, name in ctx.borrower_logins:
                out(f"  {phone}  {password}  {name}")
        for line in ctx.lines:
            out(line)


def quote_late(loan: Loan, inst, pay_day: date) -> Decimal:
    """What clears an instalment paid late: its outstanding plus the penalty accrued up to the pay day."""
    from servicing.services.accrual import pending_penalty

    pen, cmp = pending_penalty(loan, inst, pay_day)
    return inst.total_outstanding + pen + cmp
