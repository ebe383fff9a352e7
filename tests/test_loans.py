"""Booking loans: the four products, schedule written as built, disbursement entry, the 24 % cap,
borrower validation and the mandate lifecycle."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from servicing.domain.schedule import Method, build_schedule
from servicing.models import Borrower, JournalEntry, Loan, LoanProduct, Mandate
from servicing.services.loans import BookingError, book_loan, get_or_create_borrower
from servicing.services.mandates import (
    MandateError,
    activate_mandate,
    cancel_mandate,
    sign_mandate,
    suspend_mandate,
)
from tests.factories import (
    BorrowerFactory,
    annuity,
    assert_books_ok,
    balances,
    book,
    channel,
    live,
    row_counts,
    seed_reference_data,
)

D = Decimal
pytestmark = pytest.mark.django_db

START = date(2026, 1, 15)


@pytest.fixture
def reference(db):
    return seed_reference_data()

# code, principal, months, method, annual rate override
BOOKINGS = [
    ("mortgage", "670000.00", 360, "equal_instalment", D("4.9")),
    ("mortgage", "100000.00", 60, "equal_principal", None),
    ("car", "100000.00", 12, "equal_instalment", D("6")),
    ("credit_line", "30000.00", 6, "equal_instalment", None),
    ("credit_line", "30000.00", 3, "interest_only", None),
    ("instalment", "6000.00", 12, "flat_fee", None),
]


def test_reference_data_has_the_four_products(reference):
    assert set(reference) == {"mortgage", "car", "credit_line", "instalment"}
    kinds = {code: p.kind for code, p in reference.items()}
    assert kinds == {"mortgage": "mortgage", "car": "car", "credit_line": "credit_line", "instalment": "instalment"}
    assert reference["instalment"].schedule_method == "flat_fee"
    for product in reference.values():
        assert product.all_in_cost_pct <= 24


@pytest.mark.parametrize(("code", "principal", "months", "method", "rate"), BOOKINGS)
def test_booking_writes_the_built_schedule_and_the_disbursement(reference, code, principal, months, method, rate):
    product = reference[code]
    loan = book(code, principal, months, START, method=method, annual_rate_pct=rate)
    loan.refresh_from_db()
    assert loan.contract_no.startswith("HT20260115")
    assert (loan.status, loan.dpd, loan.credit_balance, loan.repayment_day) == ("active", 0, D("0.00"), 15)
    assert loan.principal == D(principal)
    expected_rate = product.annual_rate_pct if rate is None else rate
    assert loan.annual_rate_pct == expected_rate

    expected = build_schedule(Method(method), D(principal), expected_rate / 100, months, START,
                              fee_rate=product.fee_rate_pct / 100 if method == "flat_fee" else D(0))
    rows = live(loan)
    assert len(rows) == months
    assert [(i.seq, i.period_start, i.due_date, i.principal_due, i.interest_due, i.fee_due) for i in rows] == [
        (x.seq, x.period_start, x.due_date, x.principal, x.interest, x.fee) for x in expected]
    assert sum(i.principal_due for i in rows) == D(principal)
    assert all(i.status == "pending" and not i.billed for i in rows)
    assert rows[0].due_date == date(2026, 2, 15)

    entry = JournalEntry.objects.get(loan=loan)
    assert (entry.kind, entry.value_date) == ("disbursement", START)
    assert sorted(entry.lines.values_list("account", "amount")) == [
        ("disbursement_clearing", -D(principal)), ("principal_receivable", D(principal))]
    assert balances(loan) == {"principal_receivable": D(principal), "disbursement_clearing": -D(principal)}
    assert_books_ok()


def test_mortgage_reference_values_when_booked(reference):
    loan = book("mortgage", "670000", 360, START, annual_rate_pct=D("4.9"))
    rows = live(loan)
    assert (rows[0].interest_due, rows[0].principal_due) == (D("2735.83"), D("820.04"))
    assert rows[0].interest_due + rows[0].principal_due == D("3555.87") == annuity(D(670000), D("4.9"), 360)
    assert rows[-1].interest_due + rows[-1].principal_due == D("3555.18")
    assert sum(i.interest_due for i in rows) == D("610112.51")


def test_flat_fee_instalment_charges_a_fee_not_interest(reference):
    loan = book("instalment", "6000", 12, START)  # 0.6 % a period
    rows = live(loan)
    assert {(i.principal_due, i.interest_due, i.fee_due) for i in rows} == {(D("500.00"), D("0.00"), D("36.00"))}


def test_a_second_loan_for_the_same_borrower_gets_its_own_contract(reference):
    borrower = BorrowerFactory()
    a = book("car", "50000", 12, START, borrower=borrower)
    b = book("credit_line", "5000", 3, START, borrower=borrower)
    assert a.contract_no != b.contract_no
    assert borrower.loans.count() == 2


# --------------------------------------------------------------------------- booking refusals


@pytest.mark.parametrize(("code", "kwargs"), [
    ("car", {"annual_rate_pct": D("16.01")}),           # 16.01 × 1.5 = 24.015 %
    ("credit_line", {"annual_rate_pct": D("18")}),      # 27 %
    ("instalment", {"fee_rate_pct": D("2.01")}),        # 2.01 × 12 = 24.12 %
])
def test_booking_above_the_24_percent_all_in_cap_is_refused(reference, code, kwargs):
    before = row_counts()
    with pytest.raises(BookingError, match=r"annual-rate: .*24"):
        book(code, "10000", 12, START, **kwargs)
    after = row_counts()
    after.pop("Borrower"), before.pop("Borrower")  # the factory borrower is created before booking
    assert after == before


def test_booking_at_exactly_24_percent_is_allowed(reference):
    loan = book("car", "10000", 12, START, annual_rate_pct=D("16"))  # 16 × 1.5 = 24 % with the penalty markup
    assert Loan.objects.filter(pk=loan.pk).exists()


def test_a_fee_only_loan_never_costs_more_than_24_percent_a_year_in_penalty(reference):
    """Penalty of a fee-only product runs on fee × 12, so the cap must count it: (fee × 12) × 1.5 ≤ 24 %."""
    from servicing.selectors import quote_payoff

    with pytest.raises(BookingError, match=r"^annual-rate: all-in cost 36\.00 %"):
        book("instalment", "1000", 1, START, fee_rate_pct=D("2"))  # 2 × 12 × 1.5 = 36 % a year
    loan = book("instalment", "1000", 1, START, fee_rate_pct=D("1.3"))  # 1.3 × 12 × 1.5 = 23.4 %
    due = live(loan)[0].due_date
    quote = quote_payoff(loan, due + timedelta(days=361))  # 360 days of penalty on 1,000 overdue principal
    assert quote.penalty == D("234.00"), quote
    assert quote.penalty <= D("240.00")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"principal": D("0")}, "principal"),
    ({"months": 61}, "months"),
    ({"months": 11}, "months"),
    ({"method": "bullet"}, "method"),
    ({"repayment_day": 32}, "repayment-day"),
    ({"annual_rate_pct": D("-1")}, "annual-rate"),
])
def test_booking_refusals_name_the_field(reference, kwargs, field):
    args = {"product": reference["car"], "borrower": BorrowerFactory(), "principal": D("10000"), "months": 12,
            "start": START, **kwargs}
    before = row_counts()
    with pytest.raises(BookingError, match=rf"^{field}: "):
        book_loan(**args)
    assert row_counts() == before


def test_inactive_product_is_refused(reference):
    LoanProduct.objects.filter(code="car").update(is_active=False)
    with pytest.raises(BookingError, match="^product: "):
        book("car", "10000", 12, START)


@pytest.mark.parametrize(("rates", "ok"), [
    ({"annual_rate_pct": D("16.0001"), "penalty_markup_pct": D("50")}, False),
    ({"annual_rate_pct": D("20"), "penalty_markup_pct": D("30")}, False),   # 26 %
    ({"annual_rate_pct": D("10"), "fee_rate_pct": D("1.0")}, False),        # (10 + 12) × 1.5 = 33 %
    ({"annual_rate_pct": D("16"), "penalty_markup_pct": D("50")}, True),    # 24 %
    ({"annual_rate_pct": D("0"), "fee_rate_pct": D("2")}, False),           # 2 × 12 × 1.5 = 36 %: penalty on the fee
    ({"annual_rate_pct": D("0"), "fee_rate_pct": D("1.3333")}, True),       # 1.3333 × 12 × 1.5 = 23.9994 %
])
def test_product_table_check_constraint_enforces_the_cap(reference, rates, ok):
    fields = {"code": "probe", "name": "probe", "kind": "car", "schedule_method": "equal_instalment", **rates}
    if ok:
        LoanProduct.objects.create(**fields)
        assert LoanProduct.objects.filter(code="probe").exists()
    else:
        with pytest.raises(IntegrityError, match="product_all_in_cost_max_24pct"), transaction.atomic():
            LoanProduct.objects.create(**fields)
        assert not LoanProduct.objects.filter(code="probe").exists()


def test_raising_an_existing_products_rate_past_the_cap_is_refused_by_the_db(reference):
    with pytest.raises(IntegrityError), transaction.atomic():
        LoanProduct.objects.filter(code="car").update(annual_rate_pct=D("17"))
    assert LoanProduct.objects.get(code="car").annual_rate_pct == D("8")


# --------------------------------------------------------------------------- borrowers


@pytest.mark.parametrize(("id_number", "phone", "field"), [
    ("11010519850101123", "13900000001", "id-number"),      # 17 characters
    ("1101051985010112345", "13900000001", "id-number"),    # 19 characters
    ("11010519850101123Y", "13900000001", "id-number"),     # check character not a digit / X
    ("A10105198501011234", "13900000001", "id-number"),
    ("110105198501011234", "1390000000", "phone"),          # 10 digits
    ("110105198501011234", "23900000001", "phone"),         # not a mobile number
    ("110105198501011234", "139-0000-001", "phone"),
])
def test_borrower_validation(reference, id_number, phone, field):
    with pytest.raises(BookingError, match=rf"^{field}: "):
        get_or_create_borrower(name="张三", id_number=id_number, phone=phone)
    assert not Borrower.objects.exists()


def test_borrower_is_found_again_by_id_number_and_a_lowercase_x_is_accepted(reference):
    a = get_or_create_borrower(name="张三", id_number="11010519850101123x", phone="13900000001")
    assert a.id_number == "11010519850101123X"
    b = get_or_create_borrower(name=" 张三 ", id_number="11010519850101123X", phone="13900000001")
    assert a.pk == b.pk
    assert Borrower.objects.count() == 1


def test_same_id_number_with_another_name_or_phone_is_refused(reference):
    get_or_create_borrower(name="张三", id_number="110105198501011234", phone="13900000001")
    with pytest.raises(BookingError, match="^borrower-name: "):
        get_or_create_borrower(name="李四", id_number="110105198501011234", phone="13900000001")
    with pytest.raises(BookingError, match="^phone: "):
        get_or_create_borrower(name="张三", id_number="110105198501011234", phone="13900000002")
    with pytest.raises(BookingError, match="^phone: "):  # a phone belongs to one borrower
        get_or_create_borrower(name="李四", id_number="110105199001011234", phone="13900000001")
    with pytest.raises(BookingError, match="^borrower-name: "):
        get_or_create_borrower(name="  ", id_number="110105199001011234", phone="13900000009")
    assert Borrower.objects.count() == 1


# --------------------------------------------------------------------------- mandates


@pytest.fixture
def car_loan(reference):
    borrower = BorrowerFactory(name="王小明")
    return book("car", "80000", 24, START, borrower=borrower)


def _sign(loan, account="6222021234567890123", name="王小明"):
    return sign_mandate(loan=loan, channel=channel("std"), account_no=account, account_name=name, bank_code="ICBC")


def test_mandate_lifecycle_sign_activate_suspend_activate_cancel(car_loan):
    m = _sign(car_loan, account="6222 0212 3456 7890 123")
    assert (m.status, m.account_no, m.activated_at) == ("pending", "6222021234567890123", None)
    assert m.masked_account == "6222 **** **** 0123"

    m = activate_mandate(m)
    assert m.status == "active" and m.activated_at is not None

    with pytest.raises(MandateError, match="reason"):
        suspend_mandate(m, reason=" ")
    m = suspend_mandate(m, reason="bank reported frozen account")
    assert (m.status, m.suspend_reason) == ("suspended", "bank reported frozen account")
    assert m.suspended_at is not None
    with pytest.raises(MandateError, match="not active"):
        suspend_mandate(m, reason="again")

    m = activate_mandate(m, reason="account unfrozen")
    assert (m.status, m.suspend_reason) == ("active", "")

    with pytest.raises(MandateError, match="^cause: "):
        cancel_mandate(m, cause="", reason="no cause")
    with pytest.raises(MandateError, match="^cause: "):
        cancel_mandate(m, cause="bored", reason="unknown cause")
    m.refresh_from_db()
    assert m.status == "active"

    m = cancel_mandate(m, cause="borrower", reason="borrower closed the account")
    assert (m.status, m.cancel_cause, m.cancel_reason) == ("cancelled", "borrower", "borrower closed the account")
    assert m.cancelled_at is not None
    with pytest.raises(MandateError, match="already cancelled"):
        cancel_mandate(m, cause="staff", reason="twice")
    with pytest.raises(MandateError, match="cannot be activated"):
        activate_mandate(m)
    m.refresh_from_db()
    assert m.status == "cancelled"


def test_database_refuses_a_cancelled_mandate_without_a_cause(car_loan):
    m = activate_mandate(_sign(car_loan))
    with pytest.raises(IntegrityError, match="mandate_cancel_has_cause"), transaction.atomic():
        Mandate.objects.filter(pk=m.pk).update(status="cancelled")
    m.refresh_from_db()
    assert m.status == "active"


def test_activating_a_new_account_cancels_the_old_one_as_replaced(car_loan):
    old = activate_mandate(_sign(car_loan, account="6222021234567890123"))
    new = _sign(car_loan, account="6217001234567890")
    assert new.status == "pending"
    with pytest.raises(MandateError, match="awaiting confirmation"):  # one pending at a time
        _sign(car_loan, account="6217009999999999")
    new = activate_mandate(new)
    old.refresh_from_db()
    assert (new.status, old.status, old.cancel_cause) == ("active", "cancelled", "replaced")
    assert new.agreement_no in old.cancel_reason
    assert Mandate.objects.filter(loan=car_loan, status__in=["active", "suspended"]).count() == 1


def test_a_suspended_mandate_is_also_replaced(car_loan):
    old = suspend_mandate(activate_mandate(_sign(car_loan)), reason="frozen")
    new = activate_mandate(_sign(car_loan, account="6217001234567890"))
    old.refresh_from_db()
    assert (new.status, old.status, old.cancel_cause) == ("active", "cancelled", "replaced")


@pytest.mark.parametrize(("account", "name", "field"), [
    ("6222021234567890123", "王小华", "account-name"),
    ("6222021234567890123", "", "account-name"),
    ("62220212345", "王小明", "account-no"),          # 11 digits
    ("6222ABCD34567890", "王小明", "account-no"),
])
def test_mandate_signing_refusals(car_loan, account, name, field):
    with pytest.raises(MandateError, match=f"^{field}: "):
        _sign(car_loan, account=account, name=name)
    assert not Mandate.objects.exists()
