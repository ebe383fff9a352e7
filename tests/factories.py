"""Shared test helpers for servicing objects: reference data, borrowers, loans, payments, snapshots.

Loans are always booked through the services (schedule + disbursement entry), never with bare ORM rows,
so a test starts from books that `verify_books` accepts. Import what you need:

    from tests.factories import book, pay, products, assert_books_ok

`seed_reference_data()` loads the calendar for 2025–2027 only (seeding every year costs ~1 s a test), the
four products and the bundled bank channels; test modules wrap it in a `reference` fixture.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import factory
from django.db.models import Sum

from servicing.models import (
    Allocation,
    Borrower,
    BusinessCalendarDay,
    Channel,
    Instalment,
    JournalEntry,
    JournalLine,
    Loan,
    LoanProduct,
    Mandate,
    Payment,
)
from servicing.services import reference_data
from servicing.services.calendar import calendar_cache_clear, seed_calendar
from servicing.services.ledger import loan_balances
from servicing.services.loans import book_loan
from servicing.services.payments import post_payment
from servicing.services.verify import verify_books

D = Decimal
ZERO = Decimal("0.00")
CALENDAR_YEARS = (2025, 2026, 2027)
PRODUCT_CODES = ("mortgage", "car", "credit_line", "instalment")

_counter = itertools.count(1)


def fen(value) -> Decimal:
    """Independent HALF_UP rounding for expected values (tests do not reuse the code's helper)."""
    from decimal import ROUND_HALF_UP

    return Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- reference data


def seed_reference_data() -> dict[str, LoanProduct]:
    """Calendar (three years around the test dates), the four products, the bundled channels."""
    calendar_cache_clear()
    if not BusinessCalendarDay.objects.filter(date__year=2026).exists():
        seed_calendar(CALENDAR_YEARS)
    reference_data.ensure()
    calendar_cache_clear()
    return products()


def products() -> dict[str, LoanProduct]:
    return {p.code: p for p in LoanProduct.objects.filter(code__in=PRODUCT_CODES)}


def channel(code: str = "std") -> Channel:
    return Channel.objects.get(code=code)


# --------------------------------------------------------------------------- borrowers and loans


def unique_id_number() -> str:
    """A syntactically valid 18-character resident ID number, unique in this process."""
    return f"110105{next(_counter):012d}"


def unique_phone() -> str:
    return f"139{next(_counter) % 100_000_000:08d}"


class BorrowerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Borrower

    name = factory.Sequence(lambda n: f"测试借款人{n}")
    id_number = factory.LazyFunction(unique_id_number)
    phone = factory.LazyFunction(unique_phone)


def book(product: str | LoanProduct = "car", principal="12000.00", months: int = 12,
         start: date = date(2026, 1, 10), *, borrower: Borrower | None = None, **kwargs) -> Loan:
    """Book a disbursed loan through the service (schedule + disbursement entry)."""
    if isinstance(product, str):
        product = LoanProduct.objects.get(code=product)
    return book_loan(product=product, borrower=borrower or BorrowerFactory(), principal=D(principal),
                     months=months, start=start, **kwargs)


def pay(loan: Loan, amount, value_date: date, ref: str | None = None, *, channel: str = "counter",
        prepay: str = ""):
    """Post an active repayment through the service; a fresh reference unless one is given."""
    return post_payment(loan=loan, amount=str(amount), channel=channel, value_date=value_date,
                        reference=ref or f"T-{next(_counter)}", prepay=prepay)


def live(loan: Loan) -> list[Instalment]:
    """The loan's live (not superseded) instalments, oldest first, fresh from the database."""
    return list(Instalment.objects.filter(loan=loan).exclude(status="superseded").order_by("seq"))


def inst(loan: Loan, seq: int) -> Instalment:
    return Instalment.objects.exclude(status="superseded").get(loan=loan, seq=seq)


def annuity(principal: Decimal, annual_rate_pct: Decimal, n: int) -> Decimal:
    """Equal instalment A = P·r·(1+r)^n / ((1+r)^n − 1), r = annual / 12, rounded once (domain.md)."""
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        r = D(annual_rate_pct) / 100 / 12
        if r == 0:
            return fen(D(principal) / n)
        f = (1 + r) ** n
        return fen(D(principal) * r * f / (f - 1))


def daily_penalty(base: Decimal, annual_rate_pct: Decimal, days: int, markup_pct: Decimal | int = 50) -> Decimal:
    """base × rate × (1 + markup) ÷ 360 × days, rounded once to the fen."""
    return fen(D(base) * D(annual_rate_pct) / 100 * (1 + D(markup_pct) / 100) * days / 360)


def date_range(start: date, end: date):
    """Every date from start through end."""
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


# --------------------------------------------------------------------------- checks and snapshots


def assert_books_ok() -> None:
    broken = [(r.name, r.examples) for r in verify_books() if not r.ok]
    assert not broken, f"verify_books broken: {broken}"


def balances(loan: Loan) -> dict[str, Decimal]:
    return {k: v for k, v in loan_balances(loan.pk).items() if v != 0}


ROW_MODELS = (Borrower, Loan, Instalment, JournalEntry, JournalLine, Payment, Allocation, Mandate)


def row_counts() -> dict[str, int]:
    """Rows per servicing table: compare before/after to prove that nothing was written."""
    return {m.__name__: m.objects.count() for m in ROW_MODELS}


def snapshot(loans=None) -> dict:
    """Everything a business day or a payment could change, as plain comparable values."""
    inst_qs = Instalment.objects.all()
    loan_qs = Loan.objects.all()
    if loans is not None:
        ids = [loan.pk for loan in loans]
        inst_qs, loan_qs = inst_qs.filter(loan_id__in=ids), loan_qs.filter(pk__in=ids)
    return {
        "instalments": list(inst_qs.order_by("pk").values()),
        "loans": list(loan_qs.order_by("pk").values(
            "pk", "status", "dpd", "settled_on", "credit_balance")),
        "entries": list(JournalEntry.objects.order_by("pk").values_list("pk", "kind", "idempotency_key",
                                                                        "value_date")),
        "lines": JournalLine.objects.count(),
        "line_sums": dict(JournalLine.objects.values_list("account").annotate(s=Sum("amount"))
                          .values_list("account", "s")),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", "amount", "applied_amount",
                                                                    "credited_amount")),
        "allocations": Allocation.objects.count(),
    }
