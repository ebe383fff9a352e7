"""Shared helpers for the notices tests: loans through the services, a fixed daytime clock."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from servicing.models import Channel, LoanProduct
from servicing.selectors import quote_payoff
from servicing.services import reference_data
from servicing.services.loans import book_loan, get_or_create_borrower
from servicing.services.mandates import activate_mandate, sign_mandate
from servicing.services.payments import post_payment

SH = ZoneInfo("Asia/Shanghai")
START = date(2026, 1, 10)


def at(y, m, d, hh=10, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def notices_settings(**extra) -> dict:
    return {
        "BACKENDS": {"sms": "notices.backends.memory.MemoryBackend",
                     "email": "notices.backends.memory.MemoryBackend",
                     "in_app": "notices.backends.in_app.InAppBackend",
                     "letter": "notices.backends.memory.MemoryBackend"},
        "SYNC_TASKS": True,
        **extra,
    }


def make_loan(n: int = 1, *, name: str = "王小明", email: str = "", months: int = 6, mandate: bool = False,
              language: str = "zh-hans", product: str = "credit_line"):
    reference_data.ensure()
    borrower = get_or_create_borrower(name=name, id_number=f"1101011990{n:07d}1", phone=f"1380000{n:04d}",
                                      email=email)
    if borrower.language != language:
        borrower.language = language
        borrower.save(update_fields=["language"])
    loan = book_loan(product=LoanProduct.objects.get(code=product), borrower=borrower,
                     principal=Decimal("12000.00"), months=months, start=START)
    if mandate:
        m = sign_mandate(loan=loan, channel=Channel.objects.order_by("code").first(),
                         account_no="6222020200112345678", account_name=name, bank_code="ICBC")
        activate_mandate(m)
    return loan


def pay(loan, amount="500.00", ref="R1", value_date=date(2026, 2, 1)):
    return post_payment(loan=loan, amount=amount, channel="transfer", value_date=value_date, reference=ref)


def pay_off(loan, value_date=date(2026, 2, 1), ref="PAYOFF1"):
    total = quote_payoff(loan, value_date).total
    return post_payment(loan=loan, amount=total, channel="transfer", value_date=value_date, reference=ref,
                        prepay="payoff")
