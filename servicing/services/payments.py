"""Posting payments: allocate by the waterfall, prepay on request, settle when nothing is owed.

One function per state change, each in one transaction holding the loan's row lock, so two payments
racing for one loan are applied one after the other, each exactly once (idempotent on the reference).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max

from servicing.domain.allocation import COMPONENTS, InstalmentDue, allocate
from servicing.domain.money import ZERO, MoneyError, fen, parse_amount
from servicing.domain.schedule import Method, accrued_interest, periods_to_repay, schedule_for_dates
from servicing.models import Allocation, Instalment, Loan, Payment
from servicing.models.ledger import CLEARING_BY_CHANNEL, RECEIVABLE_BY_COMPONENT, Account, EntryKind
from servicing.models.loans import InstalmentStatus, LoanStatus, PrepaymentRule
from servicing.models.payments import PaymentChannel, PrepayMode

from . import audit
from .accrual import bill_instalment, bring_loan_to
from .ledger import Leg, post_entry, reverse_entry
from .loans import write_instalments
from .settlement import settle_if_paid


class PaymentError(ValueError):
    """A payment that cannot be posted as asked; the message names the field at fault."""


@dataclass
class PaymentResult:
    payment: Payment
    created: bool
    settled: bool = False
    paid: dict[str, Decimal] = field(default_factory=dict)


# --------------------------------------------------------------------------- shared helpers


def instalment_status(inst: Instalment, as_of: date) -> str:
    if inst.status == InstalmentStatus.SUPERSEDED:
        return inst.status
    if inst.total_outstanding == ZERO:
        return InstalmentStatus.PAID
    if inst.due_date < as_of:
        return InstalmentStatus.OVERDUE
    if inst.total_paid > ZERO:
        return InstalmentStatus.PARTIALLY_PAID
    return InstalmentStatus.PENDING


def _dues(instalments: list[Instalment], value_date: date) -> list[InstalmentDue]:
    return [
        InstalmentDue(key=inst.pk, due_date=inst.due_date,
                      outstanding={c: inst.outstanding(c) for c in COMPONENTS})
        for inst in instalments
        if inst.due_date <= value_date and inst.billed and inst.total_outstanding > ZERO
    ]


def _apply_lines(instalments: dict[int, Instalment], lines: list[tuple[int, str, Decimal]], value_date: date) -> None:
    """Add paid amounts (negative: taken back by a reversal) to instalments and refresh their status."""
    touched: dict[int, Instalment] = {}
    for key, component, amount in lines:
        inst = instalments[key]
        setattr(inst, f"{component}_paid", getattr(inst, f"{component}_paid") + amount)
        touched[key] = inst
    for inst in touched.values():
        inst.status = instalment_status(inst, value_date)
        if inst.status == InstalmentStatus.PAID:
            inst.paid_on = value_date
        else:
            inst.paid_on = None
        inst.save(update_fields=[*(f"{c}_paid" for c in COMPONENTS), "status", "paid_on"])


def refresh_loan_status(loan: Loan, as_of: date) -> None:
    """DPD and status from the oldest unpaid past-due instalment (the business day does this in SQL)."""
    if loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        return
    oldest = (loan.instalments.filter(status=InstalmentStatus.OVERDUE).order_by("due_date")
              .values_list("due_date", flat=True).first())
    dpd = max(0, (as_of - oldest).days) if oldest else 0
    status = LoanStatus.OVERDUE if dpd > 0 else LoanStatus.ACTIVE
    Loan.objects.filter(pk=loan.pk).update(dpd=dpd, status=status, credit_balance=loan.credit_balance)
    loan.dpd, loan.status = dpd, status


# --------------------------------------------------------------------------- prepayment


@dataclass
class _Prepayment:
    instalment: Instalment
    principal: Decimal
    interest: Decimal
    fee: Decimal


def _prepay(loan: Loan, live: list[Instalment], value_date: date, available: Decimal, mode: str) -> _Prepayment | None:
    """Re-schedule for a prepayment of up to `available` on `value_date` (提前还款).

    The interest of the current period up to the value date (and its fee for 分期) is charged on a
    prepayment instalment dated the value date; future instalments are superseded by a new schedule
    from the value date over the same due dates (reduce: 减少月供) or fewer of them (shorten: 缩短期限).
    """
    product = loan.product
    if product.prepayment_rule == PrepaymentRule.NOT_ALLOWED:
        raise PaymentError(f"prepay: product {product.code} does not allow prepayment")
    future = [i for i in live if i.due_date > value_date]
    if not future:
        return None
    current = future[0]
    balance = sum((i.outstanding("principal") for i in future), ZERO)
    method = Method(loan.schedule_method)
    interest = ZERO
    fee = ZERO
    if value_date > current.period_start:
        if method == Method.FLAT_FEE:
            fee = current.fee_due
        else:
            interest = accrued_interest(balance, loan.annual_rate, current.period_start, value_date)
    fee_rate = product.prepayment_fee_pct / 100 if product.prepayment_rule == PrepaymentRule.FEE else ZERO
    if mode == PrepayMode.PAYOFF:
        principal = balance
        needed = balance + interest + fee + fen(balance * fee_rate)
        if available < needed:
            raise PaymentError(f"amount: {available} left after what is due does not settle the loan; "
                               f"the payoff needs {needed} more on {value_date} (see payoff_quote)")
    else:
        spare = available - interest - fee
        if spare <= ZERO:
            raise PaymentError(f"amount: after what is due, {available} does not exceed the interest accrued "
                               f"to {value_date} ({interest + fee}); nothing is left to prepay")
        principal = min(balance, fen(spare / (1 + fee_rate)))
    fee += fen(principal * fee_rate)

    Instalment.objects.filter(pk__in=[i.pk for i in future]).update(status=InstalmentStatus.SUPERSEDED)
    pre = Instalment.objects.create(
        loan=loan, seq=current.seq, period_start=current.period_start, due_date=value_date,
        principal_due=principal, interest_due=interest, fee_due=fee)
    bill_instalment(pre, loan=loan)
    remaining = balance - principal
    if remaining > ZERO:
        dates = [i.due_date for i in future]
        if mode == PrepayMode.SHORTEN and method in (Method.EQUAL_INSTALMENT, Method.EQUAL_PRINCIPAL, Method.FLAT_FEE):
            keep = (current.principal_due + current.interest_due if method == Method.EQUAL_INSTALMENT
                    else current.principal_due)
            n = min(len(dates), periods_to_repay(method, remaining, loan.annual_rate, keep))
            dates = dates[:n]
        lines = schedule_for_dates(method, remaining, loan.annual_rate, value_date, dates,
                                   fee_rate=loan.fee_rate if method == Method.FLAT_FEE else ZERO,
                                   first_seq=current.seq + 1)
        write_instalments(loan, lines)
    return _Prepayment(pre, principal, interest, fee)


# --------------------------------------------------------------------------- posting


def post_payment(*, loan: Loan, amount: Decimal | str, channel: str, value_date: date, reference: str,
                 prepay: str = "", user=None, note: str = "", allow_settled: bool = False) -> PaymentResult:
    """Post a received payment once per reference: allocate, prepay if asked, settle if nothing is owed."""
    try:
        amount = parse_amount(str(amount))
    except MoneyError as exc:
        raise PaymentError(f"amount: {exc}") from exc
    if channel not in PaymentChannel.values:
        raise PaymentError(f"channel: '{channel}' is not one of {', '.join(PaymentChannel.values)}")
    if prepay not in PrepayMode.values:
        raise PaymentError(f"prepay: '{prepay}' is not one of payoff, shorten, reduce")
    reference = reference.strip()
    if not reference or len(reference) > 80:
        raise PaymentError("ref: a reference of 1–80 characters is required")
    try:
        with transaction.atomic():
            return _post_payment_locked(loan, amount, channel, value_date, reference, prepay, user, note,
                                        allow_settled)
    except IntegrityError as exc:
        # a concurrent post of the same reference for another loan won the unique constraint
        existing = Payment.objects.filter(reference=reference).first()
        if existing is None:
            raise
        return _existing(existing, loan, amount, exc)


def _existing(existing: Payment, loan: Loan, amount: Decimal, cause: Exception | None = None) -> PaymentResult:
    if existing.loan_id != loan.pk or existing.amount != amount:
        raise PaymentError(f"ref: '{existing.reference}' was already used for a different payment "
                           f"({existing.loan.contract_no}, {existing.amount})") from cause
    return PaymentResult(existing, created=False, settled=existing.loan.status == LoanStatus.SETTLED)


def _post_payment_locked(loan, amount, channel, value_date, reference, prepay, user, note, allow_settled):
    loan = Loan.objects.select_for_update().select_related("product").get(pk=loan.pk)
    existing = Payment.objects.filter(reference=reference).first()
    if existing is not None:
        return _existing(existing, loan, amount)
    if loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF) and not allow_settled:
        raise PaymentError(f"contract: loan {loan.contract_no} is {loan.status}; nothing is owed")
    if value_date < loan.disbursed_on:
        raise PaymentError(f"value-date: {value_date} is before the disbursement on {loan.disbursed_on}")

    if prepay:
        last = loan.payments.aggregate(d=Max("value_date"))["d"]
        if last and value_date < last:
            raise PaymentError(f"value-date: a prepayment cannot be valued before the last payment ({last}); "
                               "it would re-schedule instalments that are already paid")

    live = bring_loan_to(loan, value_date)
    by_id = {i.pk: i for i in live}
    dues = _dues(live, value_date)
    allocation = allocate(amount, dues, loan.product.order())
    if prepay == PrepayMode.PAYOFF and allocation.remainder == ZERO:
        owed = sum((sum(d.outstanding.values(), ZERO) for d in dues), ZERO)
        if allocation.applied < owed or any(i.due_date > value_date for i in live):
            raise PaymentError(f"amount: {amount} does not settle the loan (see payoff_quote for {value_date})")
    lines = [(line.key, line.component, line.amount) for line in allocation.lines]
    remainder = allocation.remainder
    if prepay and remainder > ZERO:
        pre = _prepay(loan, live, value_date, remainder, prepay)
        if pre is not None:
            by_id[pre.instalment.pk] = pre.instalment
            for component, value in (("fee", pre.fee), ("interest", pre.interest), ("principal", pre.principal)):
                if value > ZERO:
                    lines.append((pre.instalment.pk, component, value))
                    remainder -= value

    per_component: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for _, component, value in lines:
        per_component[component] += value
    legs = [Leg(CLEARING_BY_CHANNEL[channel], amount), Leg(Account.CREDIT_BALANCE, -remainder)]
    legs += [Leg(RECEIVABLE_BY_COMPONENT[c], -v) for c, v in per_component.items()]
    entry, _ = post_entry(kind=EntryKind.PAYMENT, key=f"payment:{reference}", value_date=value_date, loan=loan,
                          legs=legs, memo=f"{channel} payment {reference}", user=user)
    payment = Payment.objects.create(
        reference=reference, loan=loan, channel=channel, amount=amount, value_date=value_date, prepay_mode=prepay,
        applied_amount=amount - remainder, credited_amount=remainder, entry=entry,
        created_by=user if getattr(user, "is_authenticated", False) else None, note=note[:200])
    Allocation.objects.bulk_create(Allocation.rows(lines, entry=entry, payment=payment))
    _apply_lines(by_id, lines, value_date)
    loan.credit_balance += remainder
    refresh_loan_status(loan, value_date)
    from servicing.services.debits import hooks  # a planned debit of what this paid is cancelled or lowered

    hooks.after_payment(payment)
    settled = settle_if_paid(loan, user=user)
    audit.record("payment.posted", payment, actor=user, amount=amount, channel=channel, prepay=prepay,
                 contract=loan.contract_no)
    from notices.services import events

    events.payment_received(payment)
    return PaymentResult(payment, created=True, settled=settled, paid=dict(per_component))


@transaction.atomic
def apply_credit_balance(loan: Loan, as_of: date) -> Decimal:
    """Use the borrower's credit balance (挂账) on what has fallen due. Returns the amount applied."""
    loan = Loan.objects.select_for_update().select_related("product").get(pk=loan.pk)
    if loan.credit_balance <= ZERO or loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        return ZERO
    live = bring_loan_to(loan, as_of)
    allocation = allocate(loan.credit_balance, _dues(live, as_of), loan.product.order())
    if allocation.applied == ZERO:
        return ZERO
    lines = [(line.key, line.component, line.amount) for line in allocation.lines]
    per_component: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for _, component, value in lines:
        per_component[component] += value
    n = loan.journal_entries.filter(kind=EntryKind.CREDIT_APPLICATION, value_date=as_of).count()
    entry, _ = post_entry(kind=EntryKind.CREDIT_APPLICATION, key=f"credit:{loan.pk}:{as_of.isoformat()}:{n}",
                          value_date=as_of, loan=loan, memo="credit balance applied",
                          legs=[Leg(Account.CREDIT_BALANCE, allocation.applied),
                                *(Leg(RECEIVABLE_BY_COMPONENT[c], -v) for c, v in per_component.items())])
    Allocation.objects.bulk_create(Allocation.rows(lines, entry=entry))
    _apply_lines({i.pk: i for i in live}, lines, as_of)
    loan.credit_balance -= allocation.applied
    refresh_loan_status(loan, as_of)
    settle_if_paid(loan)
    return allocation.applied


# --------------------------------------------------------------------------- reversal


def payment_legs(payment: Payment) -> list[Leg]:
    """What a payment posted to the journal. Its own entry's lines; or, in an entry without a loan (the entry a
    chunk of a bank result file shares, one payment per loan: debits/posting.py), its loan's lines there and its
    amount on the channel's clearing account, which the entry holds for all of them in one line."""
    entry = payment.entry
    if entry.loan_id is not None:
        return [Leg(line.account, line.amount) for line in entry.lines.all()]
    return [Leg(CLEARING_BY_CHANNEL[payment.channel], payment.amount),
            *(Leg(line.account, line.amount) for line in entry.lines.filter(loan_id=payment.loan_id))]


@transaction.atomic
def reverse_payment(payment: Payment, *, on_date: date, reason: str, user=None) -> bool:
    """Undo a payment whose money did not stay with us (a bank return, 退回): a mirror entry, its allocations
    taken back from the instalments, DPD and status as of `on_date`. Idempotent: False if already reversed.

    Refused (PaymentError) where undoing needs a person: the loan is settled or written off (reopening and
    withdrawing the certificate is a decision), the payment re-scheduled the loan (prepayment), or the credit
    balance it left has been used since.
    """
    if not reason.strip():
        raise PaymentError("reason: say why the payment is reversed")
    loan = Loan.objects.select_for_update().select_related("product").get(pk=payment.loan_id)
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.reversed:
        return False
    if loan.status in (LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF):
        raise PaymentError(f"contract: loan {loan.contract_no} is {loan.status}; reversing a payment of a closed "
                           "loan needs a person (reopen the loan, withdraw the certificate)")
    if payment.prepay_mode:
        raise PaymentError(f"ref: payment {payment.reference} re-scheduled the loan ({payment.prepay_mode}); "
                           "reverse it by hand")
    if payment.credited_amount > loan.credit_balance:
        raise PaymentError(f"ref: payment {payment.reference} left {payment.credited_amount} as credit balance, "
                           f"but only {loan.credit_balance} is left; the rest was used since")
    memo = f"reversal of payment {payment.reference}: {reason}"[:200]
    if payment.entry.loan_id is not None:  # its own entry: mirrored whole
        reverse_entry(payment.entry, value_date=on_date, memo=memo, user=user)
    else:  # its part of an entry a bank file's chunk shares
        post_entry(kind=EntryKind.REVERSAL, key=f"reversal:payment:{payment.pk}", value_date=on_date, loan=loan,
                   legs=[Leg(leg.account, -leg.amount) for leg in payment_legs(payment)], memo=memo, user=user)
    taken_back = [(a.instalment_id, c, -amount) for a in payment.allocations.all() for c, amount in a.parts().items()]
    instalments = Instalment.objects.select_for_update().in_bulk({key for key, _, _ in taken_back})
    _apply_lines(instalments, taken_back, on_date)
    Payment.objects.filter(pk=payment.pk).update(reversed=True)
    payment.reversed = True
    loan.credit_balance -= payment.credited_amount
    refresh_loan_status(loan, on_date)
    audit.record("payment.reversed", payment, actor=user, reason=reason, amount=payment.amount,
                 contract=loan.contract_no)
    return True
