"""Posting to the double-entry journal: the only way money enters the books.

Legs are (account, amount, loan): positive = debit, negative = credit. An entry must balance; the
database checks it again at commit (deferred constraint trigger). Entries are idempotent on their key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum

from servicing.domain.money import ZERO, fen
from servicing.models import JournalEntry, JournalLine, Loan
from servicing.models.ledger import EntryKind


class UnbalancedEntry(ValueError):
    pass


@dataclass(frozen=True)
class Leg:
    account: str
    amount: Decimal


def post_entry(*, kind: str, key: str, value_date: date, legs: Iterable[Leg], loan: Loan | None = None,
               memo: str = "", user=None, reverses: JournalEntry | None = None) -> tuple[JournalEntry, bool]:
    """Post a balanced entry once per key. Returns (entry, created)."""
    merged: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for leg in legs:
        merged[leg.account] += fen(leg.amount)
    lines = [(account, amount) for account, amount in merged.items() if amount != ZERO]
    total = sum((amount for _, amount in lines), ZERO)
    if total != ZERO:
        raise UnbalancedEntry(f"entry {key} does not balance: {total}")
    if len(lines) < 2:
        raise UnbalancedEntry(f"entry {key} needs at least two non-zero lines")
    with transaction.atomic():
        existing = JournalEntry.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing, False
        entry = JournalEntry.objects.create(kind=kind, loan=loan, value_date=value_date, idempotency_key=key,
                                            memo=memo[:200], created_by=user, reverses=reverses)
        JournalLine.objects.bulk_create(
            JournalLine(entry=entry, loan=loan, account=account, amount=amount) for account, amount in lines
        )
    return entry, True


def post_staged(table: str, kind: str, memo: str, legs: str, *, user=None) -> int:
    """Post one entry per row of a staged table (servicing.sql.stage: loan_id, value_date, key, total and the
    columns `legs` reads as t.*) and its lines, set-based; ON CONFLICT on the key: already posted. `legs` is
    the SQL VALUES list of (account, amount); zero lines are left out, so the entry balances as its legs do
    (the deferred balance trigger checks it at commit)."""
    with connection.cursor() as cur:
        cur.execute(f"""
            WITH ent AS (
                INSERT INTO servicing_journalentry (kind, loan_id, value_date, idempotency_key, memo, created_at,
                                                    created_by_id)
                SELECT %s, loan_id, value_date, key, %s, now(), %s FROM {table} WHERE total > 0
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id, loan_id, idempotency_key
            )
            INSERT INTO servicing_journalline (entry_id, loan_id, account, amount)
            SELECT ent.id, ent.loan_id, x.account, x.amount
              FROM ent JOIN {table} t ON t.key = ent.idempotency_key
             CROSS JOIN LATERAL (VALUES {legs}) AS x(account, amount)
             WHERE x.amount <> 0""", [kind, memo[:200], getattr(user, "pk", None)])
        return cur.rowcount


def reverse_entry(entry: JournalEntry, *, value_date: date, memo: str, user=None) -> JournalEntry:
    """A correction is a mirror entry, never an edit."""
    legs = [Leg(line.account, -line.amount) for line in entry.lines.all()]
    reversal, _ = post_entry(kind=EntryKind.REVERSAL, key=f"reversal:{entry.pk}", value_date=value_date,
                             legs=legs, loan=entry.loan, memo=memo, user=user, reverses=entry)
    return reversal


def loan_balances(loan_id: int) -> dict[str, Decimal]:
    """Balances per account for one loan, derived from the journal (debit positive)."""
    rows = (JournalLine.objects.filter(loan_id=loan_id).values("account").annotate(total=Sum("amount")))
    return {row["account"]: row["total"] for row in rows}
