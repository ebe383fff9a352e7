"""A debit's answer from the bank (回执) is kept on the debit; the one a later answer replaces (unknown → final,
succeeded → returned) is kept as an EarlierAnswer first, by the result import (set-based) and by staff alike."""

from __future__ import annotations

from datetime import date

from django.db import connection

from servicing.models import Debit

KEEP_EARLIER_SQL = """
INSERT INTO servicing_debitattempt (debit_id, result_file_id, line_no, business_date, outcome, raw_status, raw_code,
                                    raw_message, category, action, amount, created_at)
SELECT d.id, d.result_file_id, d.result_line, COALESCE(d.result_on, d.created_at::date), d.status, d.result_status,
       d.result_code, d.result_message, d.category, d.result_action, d.amount, now()
  FROM servicing_debit d
 WHERE {where}"""


def keep_earlier_answers(cur, where: str, params: dict) -> int:
    """Keep the current answer of the debits `where` (SQL on `d`) as earlier answers; returns how many."""
    cur.execute(KEEP_EARLIER_SQL.format(where=where), params)
    return cur.rowcount


def replace_answer(debit: Debit, *, on_date: date, status: str, category: str, message: str, action: str,
                   **fields) -> None:
    """Staff give a debit (locked by the caller) its new answer: the bank's word by phone or letter, no file line."""
    with connection.cursor() as cur:
        keep_earlier_answers(cur, "d.id = %(debit)s", {"debit": debit.pk})
    Debit.objects.filter(pk=debit.pk).update(
        status=status, category=category, result_code="", result_message=message[:200], result_status="",
        result_action=action, result_on=on_date, result_file=None, result_line=None, **fields)
