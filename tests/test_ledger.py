"""The ledger's own guarantees: the database refuses unbalanced entries at commit, journal rows are
append-only, and verify_books catches figures changed behind the services' back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import ProtectedError

from servicing.models import JournalEntry, JournalLine
from servicing.services.ledger import Leg, UnbalancedEntry, post_entry, reverse_entry
from servicing.services.verify import verify_books
from tests.factories import assert_books_ok, balances, book, inst, pay, seed_reference_data

D = Decimal
START = date(2026, 1, 10)


@pytest.fixture
def reference(db):
    return seed_reference_data()


def _entry(key: str, loan=None) -> JournalEntry:
    return JournalEntry.objects.create(kind="payment", loan=loan, value_date=START, idempotency_key=key)


# --------------------------------------------------------------------------- balanced at commit


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("legs", [
    [("clearing_counter", "100.00"), ("credit_balance", "-99.99")],   # off by a fen
    [("clearing_counter", "100.00")],                                   # one line
])
def test_the_database_refuses_an_unbalanced_entry_at_commit(legs):
    with pytest.raises(IntegrityError, match="journal entry"), transaction.atomic():
        entry = _entry("raw:unbalanced")
        for account, amount in legs:
            JournalLine.objects.create(entry=entry, account=account, amount=D(amount))
        # inside the transaction the rows are there: the check is deferred to commit
        assert JournalLine.objects.filter(entry=entry).count() == len(legs)
    assert not JournalEntry.objects.filter(idempotency_key="raw:unbalanced").exists()
    assert not JournalLine.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_balanced_raw_entry_commits():
    with transaction.atomic():
        entry = _entry("raw:balanced")
        JournalLine.objects.create(entry=entry, account="clearing_counter", amount=D("100.00"))
        JournalLine.objects.create(entry=entry, account="credit_balance", amount=D("-100.00"))
    assert JournalLine.objects.filter(entry__idempotency_key="raw:balanced").count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_unbalanced_entry_written_in_one_statement_is_refused_at_commit():
    # the bulk paths write all lines of many entries in one INSERT: the statement-level check finds the bad one
    good, bad = _entry("raw:bulk-good"), _entry("raw:bulk-bad")
    with pytest.raises(IntegrityError, match=f"journal entry {bad.pk} does not balance"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("""INSERT INTO servicing_journalline (entry_id, loan_id, account, amount)
                       VALUES (%(g)s, NULL, 'clearing_bank', 10.00), (%(g)s, NULL, 'credit_balance', -10.00),
                              (%(b)s, NULL, 'clearing_bank', 10.00), (%(b)s, NULL, 'credit_balance', -9.99)""",
                    {"g": good.pk, "b": bad.pk})
        assert JournalLine.objects.count() == 4  # still deferred to commit
    assert not JournalLine.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_line_added_later_to_a_balanced_entry_is_checked_again_at_commit():
    with pytest.raises(IntegrityError, match="journal entry"), transaction.atomic():
        entry = _entry("raw:later")
        JournalLine.objects.bulk_create([JournalLine(entry=entry, account="clearing_counter", amount=D("100.00")),
                                         JournalLine(entry=entry, account="credit_balance", amount=D("-100.00"))])
        JournalLine.objects.create(entry=entry, account="clearing_counter", amount=D("0.01"))
    assert not JournalEntry.objects.filter(idempotency_key="raw:later").exists()


@pytest.mark.django_db(transaction=True)
def test_lines_of_one_entry_spread_over_statements_commit_when_they_balance():
    with transaction.atomic():
        entry = _entry("raw:spread")
        JournalLine.objects.create(entry=entry, account="clearing_counter", amount=D("100.00"))
        JournalLine.objects.bulk_create([JournalLine(entry=entry, account="credit_balance", amount=D("-60.00")),
                                         JournalLine(entry=entry, account="interest_income", amount=D("-40.00"))])
    assert JournalLine.objects.filter(entry=entry).count() == 3
    with connection.cursor() as cur:  # the commit-time queue is empty again
        cur.execute("SELECT COUNT(*) FROM servicing_entry_balance_check")
        assert cur.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_a_savepoint_rolled_back_takes_its_unbalanced_lines_with_it():
    with transaction.atomic():
        entry = _entry("raw:savepoint")
        with pytest.raises(ValueError), transaction.atomic():
            JournalLine.objects.create(entry=entry, account="clearing_counter", amount=D("5.00"))
            raise ValueError("changed my mind")
        JournalLine.objects.bulk_create([JournalLine(entry=entry, account="clearing_counter", amount=D("7.00")),
                                         JournalLine(entry=entry, account="credit_balance", amount=D("-7.00"))])
    assert sorted(JournalLine.objects.filter(entry=entry).values_list("amount", flat=True)) == [D("-7.00"), D("7.00")]


@pytest.mark.django_db
def test_a_zero_line_is_refused_by_the_database():
    entry = _entry("raw:zero")
    with pytest.raises(IntegrityError, match="journal_line_not_zero"), transaction.atomic():
        JournalLine.objects.create(entry=entry, account="clearing_counter", amount=D("0"))


@pytest.mark.django_db
def test_post_entry_refuses_unbalanced_legs_before_writing():
    with pytest.raises(UnbalancedEntry):
        post_entry(kind="payment", key="svc:1", value_date=START,
                   legs=[Leg("clearing_counter", D("10")), Leg("credit_balance", D("-9.99"))])
    assert not JournalEntry.objects.filter(idempotency_key="svc:1").exists()


@pytest.mark.django_db
def test_post_entry_is_idempotent_on_its_key():
    legs = [Leg("clearing_counter", D("10")), Leg("credit_balance", D("-10"))]
    first, created = post_entry(kind="payment", key="svc:2", value_date=START, legs=legs)
    again, created_again = post_entry(kind="payment", key="svc:2", value_date=START, legs=legs)
    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert JournalLine.objects.filter(entry=first).count() == 2


# --------------------------------------------------------------------------- append-only


@pytest.mark.django_db
def test_journal_lines_and_entries_cannot_be_updated_or_deleted(reference):
    loan = book("car", "12000", 12, START)
    entry = JournalEntry.objects.get(loan=loan, kind="disbursement")
    line = entry.lines.get(account="principal_receivable")
    attempts = [
        lambda: JournalLine.objects.filter(pk=line.pk).update(amount=D("1.00")),
        lambda: JournalLine.objects.filter(pk=line.pk).delete(),
        lambda: JournalEntry.objects.filter(pk=entry.pk).update(memo="edited"),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
            attempt()
    for sql in ("UPDATE servicing_journalline SET amount = amount * 2 WHERE entry_id = %s",
                "DELETE FROM servicing_journalline WHERE entry_id = %s",
                "DELETE FROM servicing_journalentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic(), \
                connection.cursor() as cur:
            cur.execute(sql, [entry.pk])
    with pytest.raises(ProtectedError):  # the ORM refuses before the database is even asked
        entry.delete()
    line.refresh_from_db()
    entry.refresh_from_db()
    assert (line.amount, entry.memo) == (D("12000.00"), f"disbursement {loan.contract_no}")


@pytest.mark.django_db
def test_a_correction_is_a_reversing_entry(reference):
    loan = book("car", "12000", 12, START)
    payment = pay(loan, "50.00", date(2026, 1, 20)).payment  # before anything is due: all credit balance
    reversal = reverse_entry(payment.entry, value_date=date(2026, 1, 21), memo="posted to the wrong loan")
    assert reversal.reverses_id == payment.entry_id
    assert sorted(reversal.lines.values_list("account", "amount")) == [("clearing_counter", D("-50.00")),
                                                                      ("credit_balance", D("50.00"))]
    assert balances(loan).get("credit_balance", D("0")) == 0
    assert reverse_entry(payment.entry, value_date=date(2026, 1, 22), memo="again").pk == reversal.pk
    with pytest.raises(IntegrityError, match="entry_reversed_once"), transaction.atomic():  # whatever the key
        post_entry(kind="reversal", key=f"second-reversal:{payment.entry_id}", value_date=date(2026, 1, 22),
                   legs=[Leg("clearing_counter", D("-50.00")), Leg("credit_balance", D("50.00"))], loan=loan,
                   reverses=payment.entry)


# --------------------------------------------------------------------------- verify_books catches tampering


def _verify_exit_code() -> int:
    try:
        call_command("verify_books")
    except CommandError as exc:
        return exc.returncode
    return 0


@pytest.mark.django_db
def test_verify_books_catches_an_instalment_changed_behind_the_services(reference, capsys):
    loan = book("car", "12000", 12, START)
    pay(loan, "500.00", date(2026, 2, 10))
    assert_books_ok()
    assert _verify_exit_code() == 0
    i3 = inst(loan, 3)
    with connection.cursor() as cur:  # a "quick fix" in SQL: principal marked paid without money or entries
        cur.execute("UPDATE servicing_instalment SET principal_paid = 100.00 WHERE id = %s", [i3.pk])
    broken = {r.name: r for r in verify_books() if not r.ok}
    assert "receivables_match_instalments" in broken
    assert "allocations_match_paid" in broken
    assert any(loan.contract_no in row and "principal" in row for row in broken["receivables_match_instalments"].examples)
    capsys.readouterr()
    assert _verify_exit_code() == 1
    out = capsys.readouterr().out
    assert "BROKEN receivables_match_instalments" in out and loan.contract_no in out


@pytest.mark.django_db
def test_verify_books_catches_a_credit_balance_changed_behind_the_services(reference):
    loan = book("car", "12000", 12, START)
    with connection.cursor() as cur:
        cur.execute("UPDATE servicing_loan SET credit_balance = 10.00 WHERE id = %s", [loan.pk])
    broken = {r.name for r in verify_books() if not r.ok}
    assert "receivables_match_instalments" in broken
    assert _verify_exit_code() == 1


@pytest.mark.django_db
def test_verify_books_catches_a_settled_loan_that_still_owes(reference):
    loan = book("car", "12000", 12, START)
    with connection.cursor() as cur:
        cur.execute("UPDATE servicing_loan SET status = 'settled', settled_on = '2026-02-01' WHERE id = %s",
                    [loan.pk])
    assert "settled_loans_owe_nothing" in {r.name for r in verify_books() if not r.ok}
    assert _verify_exit_code() == 1


@pytest.mark.django_db
def test_verify_books_catches_payments_their_entries_do_not_clear(reference):
    loan = book("car", "12000", 12, START)
    first, second = pay(loan, "500.00", date(2026, 2, 10)).payment, pay(loan, "300.00", date(2026, 2, 11)).payment
    assert_books_ok()
    with connection.cursor() as cur:  # the amount edited without an entry: the clearing line says otherwise
        cur.execute("UPDATE servicing_payment SET amount = 510.00, credited_amount = credited_amount + 10 "
                    "WHERE id = %s", [first.pk])
    assert {r.name for r in verify_books() if not r.ok} >= {"payments_cleared"}
    with connection.cursor() as cur:
        cur.execute("UPDATE servicing_payment SET amount = 500.00, credited_amount = credited_amount - 10 "
                    "WHERE id = %s", [first.pk])
        # two payments of one loan in one entry: which lines are whose could no longer be told
        cur.execute("UPDATE servicing_payment SET entry_id = %s WHERE id = %s", [first.entry_id, second.pk])
    broken = {r.name: r for r in verify_books() if not r.ok}
    assert "payments_cleared" in broken and [str(first.entry_id), "800.00", "500.00", "2", "1"] in (
        broken["payments_cleared"].examples)


# --------------------------------------------------------------------------- audit history


@pytest.mark.django_db
def test_set_based_updates_record_one_history_row_per_changed_row_with_context(reference):
    import pghistory
    import pghistory.models
    from django.apps import apps

    loan_event, inst_event = apps.get_model("servicing", "LoanEvent"), apps.get_model("servicing", "InstalmentEvent")
    ids = [book("car", "12000", 12, START).pk for _ in range(3)]
    assert loan_event.objects.filter(pgh_label="insert", pgh_obj_id__in=ids).count() == 3
    before_loans, before_inst = loan_event.objects.count(), inst_event.objects.count()
    with transaction.atomic(), pghistory.context(source="test", why="bulk"), connection.cursor() as cur:
        # two loans change, one is rewritten with its own values: only the changed ones get a history row
        cur.execute("UPDATE servicing_loan SET dpd = CASE WHEN id = %s THEN dpd ELSE dpd + 1 END WHERE id = ANY(%s)",
                    [ids[0], ids])
        cur.execute("UPDATE servicing_instalment SET penalty_accrued_through = %s WHERE loan_id = ANY(%s) AND seq = 1",
                    [START, ids])
    events = list(loan_event.objects.filter(pgh_label="update", pgh_obj_id__in=ids))
    assert sorted(e.pgh_obj_id for e in events) == sorted(ids[1:]) and {e.dpd for e in events} == {1}
    assert loan_event.objects.count() == before_loans + 2
    inst = list(inst_event.objects.filter(pgh_label="update", loan_id__in=ids))
    assert len(inst) == 3 and inst_event.objects.count() == before_inst + 3
    assert {e.penalty_accrued_through for e in inst} == {START}
    contexts = {e.pgh_context_id for e in events} | {e.pgh_context_id for e in inst}
    assert len(contexts) == 1 and None not in contexts
    ctx = pghistory.models.Context.objects.get(pk=contexts.pop())
    assert ctx.metadata["source"] == "test" and ctx.metadata["why"] == "bulk"


@pytest.mark.django_db
def test_a_payment_writes_no_instalment_history_but_what_is_owed_does(reference):
    """What was paid is the allocations' record; billing, waivers and superseding are the instalment's history."""
    from django.apps import apps

    from servicing.models import Allocation, Instalment
    from servicing.models.loans import INSTALMENT_HISTORY_FIELDS, PAYMENT_APPLIED_FIELDS

    # every column of the instalment is either history or the applied payment: a new column needs a decision
    columns = {f.column for f in Instalment._meta.concrete_fields} - {"id"}
    assert columns == set(INSTALMENT_HISTORY_FIELDS) | set(PAYMENT_APPLIED_FIELDS)
    assert not set(INSTALMENT_HISTORY_FIELDS) & set(PAYMENT_APPLIED_FIELDS)

    events = apps.get_model("servicing", "InstalmentEvent").objects
    loan = book("car", "12000", 12, START)
    first = inst(loan, 1)
    pay(loan, "100.00", first.due_date)  # bills the instalment (recorded) and pays part of it
    first.refresh_from_db()
    assert first.billed and first.status == "partially_paid"
    before = events.filter(pgh_obj_id=first.pk).count()
    pay(loan, first.total_due - D("100.00"), first.due_date)
    first.refresh_from_db()
    assert first.status == "paid" and Allocation.objects.filter(instalment=first).count() == 2  # one per payment
    assert events.filter(pgh_obj_id=first.pk).count() == before  # paid: allocations say what and by which payment

    second = inst(loan, 2)
    with connection.cursor() as cur:  # what is owed changes: recorded
        cur.execute("UPDATE servicing_instalment SET fee_due = fee_due + 1 WHERE id = %s", [second.pk])
        cur.execute("UPDATE servicing_instalment SET status = 'superseded' WHERE id = %s", [second.pk])
    assert list(events.filter(pgh_obj_id=second.pk).order_by("pgh_id").values_list("status", flat=True)) == [
        second.status, "superseded"]


# --------------------------------------------------------------------------- references (servicing.references)


@pytest.mark.django_db
@pytest.mark.parametrize("sql", [
    # journal lines, payments, allocations, attempts, notices and debits: a reference to nothing is refused per
    # statement
    "INSERT INTO servicing_journalline (entry_id, loan_id, account, amount) VALUES (-1, {loan}, 'fee_receivable', 1)",
    "INSERT INTO servicing_journalline (entry_id, loan_id, account, amount) VALUES ({entry}, -7, 'fee_receivable', 1)",
    "INSERT INTO servicing_allocation (entry_id, payment_id, instalment_id, fee) VALUES ({entry}, NULL, -3, 1)",
    "INSERT INTO servicing_debitattempt (debit_id, business_date, outcome, raw_status, raw_code, raw_message, "
    "category, action, amount, created_at) VALUES (-5, '2026-01-10', 'failed', '', '', '', '', '', 1, now())",
    "INSERT INTO notices_notice (event, channel, language, borrower_id, object_type, object_id, on_date, dedupe_key, "
    "status, collection, context, scheduled_for, attempts, subject, body, provider_ref, last_error, created_at) "
    "VALUES ('x', 'sms', 'zh-hans', -2, 'x', '1', '2026-01-10', 'orphan', 'queued', false, '{{}}', now(), 0, "
    "'', '', '', '', now())",
    "INSERT INTO servicing_debit (reference, batch_id, loan_id, mandate_id, instalment_id, due_date, attempt, kind, "
    "amount, status, category, result_code, result_message, channel_txn_id, created_at, updated_at) "
    "VALUES ('D-orphan', -1, {loan}, -1, -1, '2026-01-10', 0, 'due', 1, 'planned', '', '', '', '', now(), now())",
    # a changed reference is looked up too
    "UPDATE servicing_payment SET loan_id = -9 WHERE loan_id = {loan}",
    "UPDATE servicing_allocation SET instalment_id = -9 WHERE entry_id = {entry}",
])
def test_a_reference_to_a_missing_row_is_refused(reference, sql):
    loan = book("car", "12000", 12, START)
    entry = pay(loan, inst(loan, 1).total_due, inst(loan, 1).due_date).payment.entry
    with pytest.raises(IntegrityError, match="violates reference .* is not present"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute(sql.format(loan=loan.pk, entry=entry.pk))


@pytest.mark.django_db
@pytest.mark.parametrize("missing_offset", [1, 10_000_000])
def test_a_missing_reference_among_many_rows_is_found_packed_or_scattered(reference, missing_offset):
    """One statement's rows: keys packed in a stretch of the parent's ids (merged with that stretch of its index)
    or far apart (probed one by one); either way the one missing key fails the statement, and the planner's
    setting the packed check turns off for itself is back as it was."""
    loans = [book("car", "12000", 12, START) for _ in range(3)]
    entry = pay(loans[0], inst(loans[0], 1).total_due, inst(loans[0], 1).due_date).payment.entry
    keys = [loan.pk for loan in loans]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("INSERT INTO servicing_journalline (entry_id, loan_id, account, amount) "
                    "SELECT %s, k, 'fee_receivable', 1 FROM unnest(%s::bigint[]) k", [entry.pk, keys * 10])
        cur.execute("SHOW enable_nestloop")
        assert cur.fetchone()[0] == "on"
        transaction.set_rollback(True)
    missing = max(keys) + missing_offset
    with pytest.raises(IntegrityError, match=f"loan_id -> servicing_loan: key \\(loan_id\\)=\\({missing}\\)"), \
            transaction.atomic(), connection.cursor() as cur:
        cur.execute("INSERT INTO servicing_journalline (entry_id, loan_id, account, amount) "
                    "SELECT %s, k, 'fee_receivable', 1 FROM unnest(%s::bigint[]) k", [entry.pk, [*keys, missing, *keys]])


@pytest.mark.django_db
def test_a_row_still_referenced_cannot_be_deleted(reference):
    """As PROTECT did at the database: a loan with a ledger, a payment with allocations, a borrower with notices."""
    from notices.services import events as notice_events
    from servicing.models import Payment

    loan = book("car", "12000", 12, START)
    payment = pay(loan, inst(loan, 1).total_due, inst(loan, 1).due_date).payment
    assert payment.allocations.exists()
    notice_events.notify("payment_receipt", loan=loan, obj=payment, on_date=START)
    for sql, param in [("DELETE FROM servicing_loan WHERE id = %s", loan.pk),
                       ("DELETE FROM servicing_payment WHERE id = %s", payment.pk),
                       ("DELETE FROM servicing_borrower WHERE id = %s", loan.borrower_id)]:
        with pytest.raises(IntegrityError, match="is still referenced"), transaction.atomic(), \
                connection.cursor() as cur:
            cur.execute(sql, [param])
    assert Payment.objects.filter(pk=payment.pk).exists()


def _unguarded_references() -> tuple[list[str], list[str]]:
    """(references declared db_constraint=False that no trigger guards, all such references looked at)."""
    import pghistory.models
    from django.apps import apps

    with connection.cursor() as cur:
        cur.execute("""SELECT c.relname, t.tgname, encode(t.tgargs, 'escape')
                         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                        WHERE t.tgname LIKE '%references_exist%' OR t.tgname LIKE 'still_referenced%'""")
        args = {(table, name): set(raw.split("\\000")) - {""} for table, name, raw in cur.fetchall()}
    unguarded, checked = [], []
    for model in apps.get_models():
        if issubclass(model, pghistory.models.Event) or model._meta.app_label == "pghistory":
            continue  # history rows outlive what they record, on purpose
        for field in model._meta.concrete_fields:
            if not (field.is_relation and field.many_to_one or field.one_to_one) or field.db_constraint:
                continue
            table, column, parent = model._meta.db_table, field.column, field.related_model._meta.db_table
            checked.append(f"{table}.{column}")
            # set at insert and kept (references_exist*), or set by UPDATE on a million rows (answer_references_*)
            inserted = args.get((table, "references_exist"), set()) | args.get((table, "answer_references_exist"),
                                                                                set())
            changed = (args.get((table, "references_exist_on_change"), set())
                       | args.get((table, "answer_references_exist_on_update"), set()))
            deleted = set().union(*(a for (t, n), a in args.items() if t == parent and n.startswith("still_referenced")))
            append_only = parent == "servicing_journalentry"  # refuses every delete already
            if not ({column, parent} <= inserted and {column, parent} <= changed
                    and (append_only or {table, column} <= deleted)):
                unguarded.append(f"{table}.{column} -> {parent}")
    return unguarded, checked


@pytest.mark.django_db
def test_every_reference_without_a_foreign_key_is_checked_by_a_trigger():
    """A ForeignKey declared db_constraint=False must be in servicing.references' triggers (insert and change),
    and its parent must refuse to lose a referenced row: otherwise nothing guards it."""
    unguarded, checked = _unguarded_references()
    assert not unguarded, unguarded
    assert {"servicing_journalline.entry_id", "servicing_allocation.payment_id", "notices_notice.loan_id"} <= set(checked)
    with connection.cursor() as cur:  # and a missing guard is noticed (rolled back with the test)
        cur.execute("DROP TRIGGER still_referenced ON servicing_debit")
    assert _unguarded_references()[0] == ["servicing_debitattempt.debit_id -> servicing_debit"]
