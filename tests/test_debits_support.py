"""Helpers for the debit tests: loans with mandates, result files written in a channel's profile."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from servicing.models import Channel, Debit, LoanProduct
from servicing.services import reference_data
from servicing.services.loans import book_loan, get_or_create_borrower
from servicing.services.mandates import activate_mandate, sign_mandate

START = date(2026, 11, 1)
FIRST_DUE = date(2026, 12, 1)


class NoticeRecorder:
    def __init__(self):
        self.calls: list[tuple[str, int, object, dict]] = []
        self.include_outbox = False  # also count what a bulk path wrote to the outbox itself

    def __call__(self, event, *, loan, obj=None, context=None, on_date=None, **kw):
        self.calls.append((event, loan.pk, obj, context or {}))
        return []

    def events(self, loan=None, event=None) -> list[str]:
        """Events notified, then (include_outbox) those a bulk path wrote to the outbox, one per object."""
        from notices.models import Notice

        bulk = []
        if self.include_outbox:
            rows = Notice.objects.order_by("id").values_list("event", "loan_id", "object_id")
            bulk = [(e, lid) for e, lid, _ in dict.fromkeys(rows)]
        return [e for e, lid in [(e, lid) for e, lid, _, _ in self.calls] + bulk
                if (loan is None or lid == loan.pk) and (event is None or e == event)]


@pytest.fixture(name="notices")
def notices_fixture(monkeypatch):
    from notices.services import events

    rec = NoticeRecorder()
    monkeypatch.setattr(events, "notify", rec)
    return rec


@pytest.fixture(name="ref_data")
def ref_data_fixture(db):
    reference_data.ensure()
    return {c.code: c for c in Channel.objects.all()}


def make_loan(i: int, channel: Channel, *, principal: str = "12000", months: int = 12, product: str = "car",
              start: date = START, repayment_day: int = 1, single_limit: Decimal | None = None, mandate: bool = True,
              name: str = "张三"):
    borrower = get_or_create_borrower(name=f"{name}{i}", id_number=f"11010119900101{i:04d}", phone=f"138{i:08d}")
    loan = book_loan(product=LoanProduct.objects.get(code=product), borrower=borrower, principal=Decimal(principal),
                     months=months, start=start, repayment_day=repayment_day)
    if mandate:
        m = sign_mandate(loan=loan, channel=channel, account_no=f"6222{i:012d}", account_name=borrower.name,
                         bank_code="ICBC", single_limit=single_limit)
        activate_mandate(m)
    return loan


def result_file(channel: Channel, rows: list[tuple], *, header: list[str] | None = None) -> bytes:
    """rows: (reference, amount, status_outcome, code, message, settled_on) in canonical terms; status_outcome
    is succeeded/failed/unknown (mapped to the profile's word) or a raw word prefixed with '!'."""
    prof = channel.profile["result_file"]
    words = {v: k for k, v in reversed(list(prof["status_values"].items()))}
    fields = [c["field"] for c in prof["columns"]]
    out = io.StringIO()
    w = csv.writer(out, delimiter=prof.get("delimiter", ","), lineterminator="\r\n")
    if prof.get("header", True):
        w.writerow(header or [c["header"] for c in prof["columns"]])
    for reference, amount, outcome, code, message, settled in rows:
        status = outcome[1:] if outcome.startswith("!") else words[outcome]
        if isinstance(amount, Decimal):
            amount = str(int(amount * 100)) if prof.get("amount_unit") == "fen" else f"{amount:.2f}"
        values = {"reference": reference, "amount": amount, "status": status, "code": code, "message": message,
                  "settled_on": (settled if isinstance(settled, str)  # a raw text, as the bank wrote it
                                 else settled.strftime(prof.get("date_format", "%Y-%m-%d")) if settled else ""),
                  "channel_txn_id": f"T{reference}" if settled else "", "account_no": ""}
        w.writerow([values[f] for f in fields])
    enc = prof.get("encoding", "utf-8")
    return out.getvalue().encode(enc)


def code_for(channel: Channel, category: str) -> str:
    for code, cat in channel.profile["result_file"]["codes"].items():
        if cat == category:
            return code
    raise KeyError(category)


def debits_of(batch) -> list[Debit]:
    return list(Debit.objects.filter(batch=batch).select_related("loan").order_by("id"))
