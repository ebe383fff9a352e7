"""Shared helpers for the collections tests (loans booked through the services, staff with roles)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group

from collections_app.models import CaseStatus, CollectionCase
from collections_app.services.cases import ensure_roles
from servicing import roles
from servicing.models import LoanProduct
from servicing.services import reference_data
from servicing.services.business_day import run_business_day
from servicing.services.loans import book_loan, get_or_create_borrower
from servicing.services.payments import post_payment

START = date(2026, 4, 15)  # first due date 2026-05-15 (Fri); grace ends Mon 2026-05-18


def make_world(django_user_model) -> dict:
    """Reference data, roles, two collectors and two supervisors (each test module's `world` fixture)."""
    reference_data.ensure()
    ensure_roles()

    def user(name: str, *groups: str):
        u = django_user_model.objects.create_user(username=name, password="pw-" + name * 3, is_staff=True)
        for g in groups:
            u.groups.add(Group.objects.get(name=g))
        return u

    return {
        "product": LoanProduct.objects.get(code="car"),
        "collector": user("coll1", roles.COLLECTOR),
        "collector2": user("coll2", roles.COLLECTOR),
        "supervisor": user("sup1", roles.SUPERVISOR),
        "supervisor2": user("sup2", roles.SUPERVISOR),
        "user": user,
    }


def book(product, i: int = 1, *, principal: str = "12000", start: date = START):
    borrower = get_or_create_borrower(name=f"李{i}", id_number=f"11010119850101{i:04d}", phone=f"1391234{i:04d}")
    return book_loan(product=product, borrower=borrower, principal=Decimal(principal), months=12, start=start)


def pay(loan, amount, on: date, ref: str):
    return post_payment(loan=loan, amount=Decimal(str(amount)), channel="counter", value_date=on, reference=ref)


def run_days(start: date, end: date) -> None:
    d = start
    while d <= end:
        run_business_day(d)
        d += timedelta(days=1)


def open_case(loan) -> CollectionCase | None:
    return CollectionCase.objects.filter(loan=loan, status__in=[CaseStatus.OPEN, CaseStatus.PAUSED]).first()
