"""Booking loans: products, borrowers, the schedule and the disbursement entry, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection, transaction

from servicing.domain.money import fen
from servicing.domain.schedule import HolidayRule, Method, ScheduleLine, build_schedule
from servicing.models import Borrower, Instalment, Loan, LoanProduct
from servicing.models.ledger import Account, EntryKind
from servicing.models.loans import MAX_ALL_IN_COST_PCT, ProductKind, all_in_cost_pct

from . import audit
from .ledger import Leg, post_entry


class BookingError(ValueError):
    """A loan that cannot be booked as asked; the message names the field."""


@dataclass(frozen=True)
class ProductSpec:
    code: str
    name: str
    kind: str
    schedule_method: str
    allowed_methods: str
    annual_rate_pct: Decimal
    fee_rate_pct: Decimal
    min_months: int
    max_months: int
    grace_days: int
    compound_interest: bool
    secured: bool
    collateral_label: str
    holiday_rule: str = HolidayRule.NONE
    prepayment_rule: str = "allowed"


DEFAULT_PRODUCTS = (
    ProductSpec("mortgage", "个人住房贷款", ProductKind.MORTGAGE, Method.EQUAL_INSTALMENT, "equal_principal",
                Decimal("4.2000"), Decimal("0"), 60, 360, 3, True, True, "房产"),
    ProductSpec("car", "汽车消费贷款", ProductKind.CAR, Method.EQUAL_INSTALMENT, "", Decimal("8.0000"),
                Decimal("0"), 12, 60, 3, True, True, "车辆"),
    ProductSpec("credit_line", "随借随还信用贷", ProductKind.CREDIT_LINE, Method.EQUAL_INSTALMENT, "interest_only,bullet",
                Decimal("14.4000"), Decimal("0"), 1, 12, 1, False, False, ""),
    ProductSpec("instalment", "消费分期", ProductKind.INSTALMENT, Method.FLAT_FEE, "", Decimal("0"),
                Decimal("0.6000"), 1, 12, 3, False, False, ""),
)


def ensure_default_products() -> list[LoanProduct]:
    """The four product kinds the business runs, created once (ops may edit them afterwards)."""
    products = []
    for spec in DEFAULT_PRODUCTS:
        product, _ = LoanProduct.objects.get_or_create(code=spec.code, defaults={
            "name": spec.name, "kind": spec.kind, "schedule_method": spec.schedule_method,
            "allowed_methods": spec.allowed_methods, "annual_rate_pct": spec.annual_rate_pct,
            "fee_rate_pct": spec.fee_rate_pct, "min_months": spec.min_months, "max_months": spec.max_months,
            "grace_days": spec.grace_days, "compound_interest": spec.compound_interest, "secured": spec.secured,
            "collateral_label": spec.collateral_label, "holiday_rule": spec.holiday_rule,
        })
        products.append(product)
    return products


def get_or_create_borrower(*, name: str, id_number: str, phone: str, email: str = "") -> Borrower:
    """One borrower per ID number; a phone number belongs to one borrower."""
    name, id_number, phone = name.strip(), id_number.strip().upper(), phone.strip()
    if not name:
        raise BookingError("borrower-name: must not be empty")
    if len(id_number) != 18 or not (id_number[:17].isdigit() and (id_number[17].isdigit() or id_number[17] == "X")):
        raise BookingError(f"id-number: '{id_number}' is not an 18-character resident ID number")
    if not (phone.isdigit() and len(phone) == 11 and phone.startswith("1")):
        raise BookingError(f"phone: '{phone}' is not an 11-digit mobile number")
    borrower = Borrower.objects.filter(id_number=id_number).first()
    if borrower:
        if borrower.name != name:
            raise BookingError(f"borrower-name: ID number {id_number[:6]}… belongs to another name")
        if borrower.phone != phone:
            raise BookingError("phone: differs from the phone on file for this ID number")
        return borrower
    if Borrower.objects.filter(phone=phone).exists():
        raise BookingError(f"phone: {phone[:3]}****{phone[-4:]} already belongs to another borrower")
    return Borrower.objects.create(name=name, id_number=id_number, phone=phone, email=email)


def next_contract_no(disbursed_on: date) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('servicing_contract_no_seq')")
        (n,) = cur.fetchone()
    return f"HT{disbursed_on:%Y%m%d}{n:07d}"


def loan_schedule(product: LoanProduct, *, principal: Decimal, months: int, start: date, annual_rate_pct: Decimal,
                  fee_rate_pct: Decimal, method: str, repayment_day: int | None) -> list[ScheduleLine]:
    is_working = None
    if product.holiday_rule != HolidayRule.NONE:
        from servicing.services.calendar import is_working_day

        is_working = is_working_day
    return build_schedule(Method(method), principal, annual_rate_pct / 100, months, start,
                          repayment_day=repayment_day,
                          fee_rate=fee_rate_pct / 100 if method == Method.FLAT_FEE else Decimal(0),
                          holiday_rule=HolidayRule(product.holiday_rule), is_working_day=is_working)


@transaction.atomic
def book_loan(*, product: LoanProduct, borrower: Borrower, principal: Decimal, months: int, start: date,
              annual_rate_pct: Decimal | None = None, fee_rate_pct: Decimal | None = None,
              repayment_day: int | None = None, method: str | None = None, contract_no: str | None = None,
              user=None) -> Loan:
    """Book a disbursed loan: contract, schedule, and the disbursement entry in the ledger."""
    principal = fen(principal)
    if principal <= 0:
        raise BookingError("principal: must be greater than zero")
    if not product.is_active:
        raise BookingError(f"product: '{product.code}' is not active")
    method = method or product.schedule_method
    if method not in product.methods():
        raise BookingError(f"method: '{method}' is not offered by product {product.code} ({', '.join(product.methods())})")
    if not (product.min_months <= months <= product.max_months):
        raise BookingError(f"months: {months} is outside {product.min_months}–{product.max_months} for {product.code}")
    rate = product.annual_rate_pct if annual_rate_pct is None else Decimal(annual_rate_pct)
    fee_rate = product.fee_rate_pct if fee_rate_pct is None else Decimal(fee_rate_pct)
    if rate < 0 or fee_rate < 0:
        raise BookingError("annual-rate: must not be negative")
    all_in = all_in_cost_pct(rate, fee_rate, product.penalty_markup_pct)
    if all_in > MAX_ALL_IN_COST_PCT:
        raise BookingError(f"annual-rate: all-in cost {all_in:.2f} % a year exceeds the {MAX_ALL_IN_COST_PCT} % cap")
    if repayment_day is not None and not 1 <= repayment_day <= 31:
        raise BookingError(f"repayment-day: {repayment_day} is not a day of the month (1–31)")
    lines = loan_schedule(product, principal=principal, months=months, start=start, annual_rate_pct=rate,
                          fee_rate_pct=fee_rate, method=method, repayment_day=repayment_day)
    loan = Loan.objects.create(
        contract_no=contract_no or next_contract_no(start), product=product, borrower=borrower,
        principal=principal, annual_rate_pct=rate, fee_rate_pct=fee_rate, schedule_method=method,
        term_months=months, disbursed_on=start, repayment_day=repayment_day or start.day,
    )
    write_instalments(loan, lines)
    post_entry(kind=EntryKind.DISBURSEMENT, key=f"disbursement:{loan.pk}", value_date=start, loan=loan,
               memo=f"disbursement {loan.contract_no}", user=user,
               legs=[Leg(Account.PRINCIPAL_RECEIVABLE, principal), Leg(Account.DISBURSEMENT_CLEARING, -principal)])
    audit.record("loan.booked", loan, actor=user, principal=principal, product=product.code)
    return loan


def write_instalments(loan: Loan, lines: list[ScheduleLine]) -> list[Instalment]:
    return Instalment.objects.bulk_create(
        Instalment(loan=loan, seq=line.seq, period_start=line.period_start, due_date=line.due_date,
                   principal_due=line.principal, interest_due=line.interest, fee_due=line.fee)
        for line in lines
    )
