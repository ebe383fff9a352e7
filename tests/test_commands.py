"""The management commands as operators script them (contracts.md): output formats, --json shapes, exit
codes, and bad input to every command → exit 2 with a one-line message naming the field, nothing written."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from servicing.models import Loan
from tests.factories import assert_books_ok, book, row_counts, seed_reference_data

D = Decimal
pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 1, 10)


@pytest.fixture
def reference(db):
    return seed_reference_data()


def run(*args: str) -> tuple[int, str]:
    """(exit code, stdout) of a command run through call_command, as the exit code the CLI would give."""
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


def run_json(*args: str) -> dict:
    code, out = run(*args, "--json")
    assert code == 0, out
    assert out.strip().count("\n") == 0, "exactly one JSON object on one line"
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------- schedule


def schedule_rows(*args: str) -> list[dict]:
    code, out = run("schedule", *args)
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["seq", "due_date", "principal", "interest", "fee", "total", "balance_after"]
    return rows


def total(rows, column) -> Decimal:
    return sum((D(r[column]) for r in rows), D("0"))


def test_schedule_reproduces_the_670k_mortgage_reference():
    rows = schedule_rows("--method", "equal_instalment", "--principal", "670000", "--annual-rate", "4.9",
                         "--months", "360", "--start", "2026-01-15")
    assert len(rows) == 360
    first, last = rows[0], rows[-1]
    assert (first["interest"], first["principal"], first["total"]) == ("2735.83", "820.04", "3555.87")
    assert {r["total"] for r in rows[:-1]} == {"3555.87"}
    assert last["total"] == "3555.18" and last["balance_after"] == "0.00"
    assert total(rows, "interest") == D("610112.51")
    assert total(rows, "principal") == D("670000.00")
    assert (first["seq"], first["due_date"], last["due_date"]) == ("1", "2026-02-15", "2056-01-15")


def test_schedule_reproduces_the_100k_equal_instalment_reference():
    rows = schedule_rows("--method", "equal_instalment", "--principal", "100000.00", "--annual-rate", "6",
                         "--months", "12", "--start", "2026-01-15")
    assert (rows[0]["total"], rows[0]["interest"]) == ("8606.64", "500.00")
    assert rows[-1]["total"] == "8606.69"
    assert total(rows, "interest") == D("3279.73") and total(rows, "principal") == D("100000.00")


def test_schedule_reproduces_the_100k_equal_principal_reference():
    rows = schedule_rows("--method", "equal_principal", "--principal", "100000", "--annual-rate", "6",
                         "--months", "12", "--start", "2026-01-15")
    assert rows[0]["total"] == "8833.33" and rows[-1]["total"] == "8375.04"
    assert total(rows, "interest") == D("3250.00") and total(rows, "principal") == D("100000.00")


def test_schedule_bullet_is_days_times_daily_rate():
    """100,000 × 6 % / 360 × 31 days = 516.67 (domain.md): one month of 31 days, January."""
    rows = schedule_rows("--method", "bullet", "--principal", "100000", "--annual-rate", "6", "--months", "1",
                         "--start", "2026-01-01")
    assert [(r["due_date"], r["interest"], r["total"]) for r in rows] == [("2026-02-01", "516.67", "100516.67")]


def test_schedule_flat_fee_and_month_end_repayment_day():
    rows = schedule_rows("--method", "flat_fee", "--principal", "1200", "--annual-rate", "0", "--months", "3",
                         "--start", "2026-01-31", "--fee-rate", "0.5")
    assert [(r["due_date"], r["principal"], r["fee"], r["total"]) for r in rows] == [
        ("2026-02-28", "400.00", "6.00", "406.00"), ("2026-03-31", "400.00", "6.00", "406.00"),
        ("2026-04-30", "400.00", "6.00", "406.00")]


# --------------------------------------------------------------------------- --json shapes


CREATE = ["create_loan", "--product", "car", "--borrower-name", "张三", "--id-number", "110105198501011234",
          "--phone", "13900000001", "--principal", "12000.00", "--months", "12", "--start", "2026-01-10"]


def test_create_loan_json_prints_one_object_with_the_contract_no(reference):
    data = run_json(*CREATE, "--account-no", "6222021234567890123", "--bank-code", "ICBC", "--channel", "std")
    assert list(data) == ["contract_no"]
    loan = Loan.objects.get(contract_no=data["contract_no"])
    assert (loan.principal, loan.term_months, loan.product.code, loan.borrower.name) == (
        D("12000.00"), 12, "car", "张三")
    assert loan.mandates.get().status == "active"
    assert_books_ok()


def test_create_loan_text_prints_the_contract_no(reference):
    code, out = run(*CREATE)
    assert code == 0 and Loan.objects.filter(contract_no=out.strip()).exists()


def test_post_payment_payoff_quote_loan_status_json(reference):
    loan = book("car", "12000", 12, START)
    data = run_json("post_payment", "--contract", loan.contract_no, "--amount", "1500.00", "--channel", "counter",
                    "--value-date", "2026-02-10", "--ref", "CTR-1")
    assert data["reference"] == "CTR-1" and data["amount"] == "1500.00" and data["created"] is True
    assert (data["applied"], data["credited"]) == ("1043.86", "456.14")   # instalment 1 = 80.00 + 963.86
    again = run_json("post_payment", "--contract", loan.contract_no, "--amount", "1500.00", "--channel", "counter",
                     "--value-date", "2026-02-10", "--ref", "CTR-1")
    assert again["created"] is False

    quote = run_json("payoff_quote", loan.contract_no, "--date", "2026-02-25")
    assert set(quote) == {"principal", "interest", "penalty", "compound", "fees", "prepayment_fee", "total"}
    assert all(isinstance(v, str) and len(v.split(".")[1]) == 2 for v in quote.values())
    assert D(quote["total"]) == sum(D(v) for k, v in quote.items() if k != "total")
    assert quote["principal"] == "11036.14"

    status = run_json("loan_status", loan.contract_no)
    assert set(status) >= {"contract_no", "status", "dpd", "outstanding", "overdue", "credit_balance", "settled_on",
                           "mandate", "collection_case", "certificate", "instalments"}
    assert status["contract_no"] == loan.contract_no and status["status"] in {"active", "overdue"}
    assert isinstance(status["dpd"], int) and status["credit_balance"] == "456.14"
    for key in ("outstanding", "overdue"):
        assert set(status[key]) == {"principal", "interest", "penalty", "compound", "fees", "total"}
        assert all(isinstance(v, str) for v in status[key].values())
    assert status["outstanding"]["principal"] == "11036.14"
    assert status["settled_on"] is None and status["mandate"] is None
    inst1 = status["instalments"][0]
    assert set(inst1) == {"seq", "due_date", "principal", "interest", "fee", "penalty", "paid", "status"}
    assert (inst1["seq"], inst1["due_date"], inst1["paid"], inst1["status"]) == (1, "2026-02-10", "1043.86", "paid")
    assert len(status["instalments"]) == 12

    settle = run_json("post_payment", "--contract", loan.contract_no, "--amount", quote["total"], "--channel",
                      "transfer", "--value-date", "2026-02-25", "--ref", "TRF-2", "--prepay", "payoff")
    assert settle["settled"] is True and settle["loan_status"] == "settled"
    status = run_json("loan_status", loan.contract_no)
    assert (status["status"], status["settled_on"], status["outstanding"]["total"]) == (
        "settled", "2026-02-25", "0.00")


def test_run_business_day_and_verify_books_json(reference):
    loan = book("car", "12000", 12, START)
    data = run_json("run_business_day", "--date", "2026-02-11")
    assert data["date"] == "2026-02-11" and {"bill_due", "mark_overdue", "accrue_penalties"} <= set(data["steps"])
    many = run_json("run_business_day", "--date", "2026-02-12", "--through", "2026-02-14")
    assert [d["date"] for d in many["days"]] == ["2026-02-12", "2026-02-13", "2026-02-14"]
    loan.refresh_from_db()
    assert (loan.status, loan.dpd) == ("overdue", 4)
    books = run_json("verify_books")
    assert books["ok"] is True and all(c["ok"] for c in books["checks"])
    assert {"entries_balance", "receivables_match_instalments", "settled_loans_owe_nothing"} <= {
        c["name"] for c in books["checks"]}


# --------------------------------------------------------------------------- bad input → exit 2


@pytest.fixture
def loan(reference):
    return book("car", "12000", 12, START)


def _pay(contract="{c}", amount="100.00", channel="counter", value_date="2026-02-10", ref="R-1", *extra):
    args = ["post_payment", "--contract", contract, "--amount", amount, "--channel", channel,
            "--value-date", value_date, "--ref", ref, *extra]
    return [a for a in args if a is not None]


def _create(**over):
    base = {"--product": "car", "--borrower-name": "李四", "--id-number": "110105199001011234",
            "--phone": "13900000002", "--principal": "10000", "--months": "12", "--start": "2026-01-10"}
    base.update(over)
    args = ["create_loan"]
    for k, v in base.items():
        if v is not None:
            args += [k, v]
    return args


BAD = [
    # schedule
    (["schedule", "--method", "annuity", "--principal", "1000", "--annual-rate", "5", "--months", "12",
      "--start", "2026-01-10"], "method"),
    (["schedule", "--method", "bullet", "--principal", "abc", "--annual-rate", "5", "--months", "12",
      "--start", "2026-01-10"], "principal"),
    (["schedule", "--method", "bullet", "--principal", "-5", "--annual-rate", "5", "--months", "12",
      "--start", "2026-01-10"], "principal"),
    (["schedule", "--method", "bullet", "--principal", "1.005", "--annual-rate", "5", "--months", "12",
      "--start", "2026-01-10"], "principal"),
    (["schedule", "--method", "bullet", "--principal", "1000", "--annual-rate", "5", "--months", "0",
      "--start", "2026-01-10"], "months"),
    (["schedule", "--method", "bullet", "--principal", "1000", "--annual-rate", "abc", "--months", "12",
      "--start", "2026-01-10"], "annual-rate"),
    (["schedule", "--method", "bullet", "--principal", "1000", "--annual-rate", "5", "--months", "12",
      "--start", "2026-13-01"], "start"),
    (["schedule", "--method", "bullet", "--principal", "1000", "--annual-rate", "5", "--months", "12"], "start"),
    (["schedule", "--method", "equal_instalment", "--principal", "1000", "--annual-rate", "5", "--months", "12",
      "--start", "2026-01-10", "--repayment-day", "32"], "repayment_day"),
    # create_loan
    (_create(**{"--product": "boat"}), "product"),
    (_create(**{"--start": "2026-02-30"}), "start"),
    (_create(**{"--principal": "abc"}), "principal"),
    (_create(**{"--principal": "-100"}), "principal"),
    (_create(**{"--principal": "100.001"}), "principal"),
    (_create(**{"--months": "0"}), "months"),
    (_create(**{"--months": "61"}), "months"),          # outside the car product's 12–60
    (_create(**{"--phone": None}), "phone"),
    (_create(**{"--phone": "12345"}), "phone"),
    (_create(**{"--id-number": "123"}), "id-number"),
    (_create(**{"--annual-rate": "17"}), "annual-rate"),  # 17 × 1.5 > 24 %
    (_create(**{"--method": "bullet"}), "method"),
    (_create(**{"--account-no": "6222021234567890123", "--bank-code": "ICBC", "--channel": "nosuchbank"}), "channel"),
    (_create(**{"--account-no": "6222021234567890123"}), "account-no"),
    (_create(**{"--account-no": "12", "--bank-code": "ICBC", "--channel": "std"}), "account-no"),
    # post_payment
    (_pay(contract="HT-NOPE"), "contract"),
    (_pay(value_date="2026-02-31"), "value-date"),
    (_pay(value_date="2026-01-09"), "value-date"),       # before the disbursement
    (_pay(amount="abc"), "amount"),
    (_pay(amount="-100"), "amount"),
    (_pay(amount="0"), "amount"),
    (_pay(amount="1.234"), "amount"),
    (_pay(channel="bank"), "channel"),                    # active repayment: counter or transfer only
    (_pay(ref=None)[:-1], "ref"),                          # --ref without a value
    (_pay("{c}", "100.00", "counter", "2026-02-10", "R-1", "--prepay", "everything"), "prepay"),
    # payoff_quote
    (["payoff_quote", "HT-NOPE", "--date", "2026-02-10"], "contract"),
    (["payoff_quote", "{c}", "--date", "10/02/2026"], "date"),
    (["payoff_quote", "{c}"], "date"),
    (["payoff_quote", "{c}", "--date", "2025-12-31"], "date"),
    # run_business_day
    (["run_business_day", "--date", "tomorrow"], "date"),
    (["run_business_day"], "date"),
    (["run_business_day", "--date", "2026-02-10", "--through", "2026-02-01"], "through"),
    # loan_status
    (["loan_status", "HT-NOPE"], "contract"),
    (["loan_status"], "contract_no"),
    # verify_books
    (["verify_books", "--all"], "--all"),
]


@pytest.mark.parametrize(("args", "field"), BAD, ids=[f"{a[0]}-{f}-{i}" for i, (a, f) in enumerate(BAD)])
def test_bad_input_exits_2_naming_the_field_and_writes_nothing(loan, args, field):
    args = [a.replace("{c}", loan.contract_no) for a in args]
    before = row_counts()
    code, message = run(*args)
    assert code == 2, message
    assert "\n" not in message.strip(), "a one-line message"
    assert field in message, message
    assert row_counts() == before


def test_a_usage_error_from_the_real_command_line_is_one_line_and_exit_2(reference):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    settings_db = connection.settings_dict
    env["DATABASE_URL"] = (f"postgres://{settings_db['USER']}@{settings_db['HOST'] or '127.0.0.1'}:"
                           f"{settings_db['PORT'] or 5432}/{settings_db['NAME']}")  # the test database
    for args, field in [(["schedule", "--method", "bullet", "--principal", "1000", "--annual-rate", "5",
                          "--months", "0", "--start", "2026-01-10"], "--months"),
                        (["post_payment", "--contract", "HT-NOPE", "--amount", "1", "--channel", "counter",
                          "--value-date", "2026-02-10", "--ref", "X"], "contract")]:
        proc = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and field in lines[0], proc.stderr
