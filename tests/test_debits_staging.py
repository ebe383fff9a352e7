"""Staging a result file: whatever way a line is read (a plain block, line by line, or by the csv module), the
staged values are what the csv module reads from the file, with the line number a person sees in an editor."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from servicing.models import Debit, ReconciliationException
from servicing.services.debits import results
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.profiles import FileLayout

from .test_debits_support import (  # noqa: F401
    FIRST_DUE,
    code_for,
    debits_of,
    make_loan,
    notices_fixture,
    ref_data_fixture,
    result_file,
)

pytestmark = pytest.mark.django_db

FIELDS = ("reference", "amount", "status", "code", "message", "settled_on", "channel_txn_id")
LAYOUT = FileLayout(encoding="utf-8-sig", delimiter=",", header=True, amount_unit="yuan", date_format="%Y-%m-%d",
                    line_ending="\n", columns=tuple((f, f) for f in FIELDS), trailer=None)


def as_read(raw: str, delim: str) -> str:
    """A line's text as a person compares it: an empty quoted value "" is empty (a plain line is staged as its
    values, results._plain_block)."""
    return re.sub(rf'{re.escape(delim)}""(?={re.escape(delim)}|$)', delim, raw)


def what_csv_reads(text: str, layout: FileLayout) -> list[tuple]:
    """The reference reading: the csv module over the whole file, values stripped, blank and trailer lines
    skipped, a wrong column count an error row; each row's raw text is its lines in the file."""
    lines = list(io.StringIO(text, newline=""))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter)
    out, header, last = [], layout.header, 0
    prefix = (layout.trailer or {}).get("prefix")
    for row in reader:
        raw = as_read("".join(lines[last:reader.line_num]).rstrip("\r\n"), layout.delimiter)
        last = reader.line_num
        if header:
            header = False
            continue
        if not row or (len(row) == 1 and not row[0].strip()) or (prefix and row[0].startswith(prefix)):
            continue
        if len(row) != len(layout.columns):
            out.append((reader.line_num, raw, f"{len(row)} columns instead of {len(layout.columns)}")
                       + (None,) * len(layout.columns))
        else:
            out.append((reader.line_num, raw, None, *[v.strip() for v in row]))
    return out


def staged(text: str, layout: FileLayout, tmp_path) -> list[tuple]:
    path = tmp_path / "result.csv"
    path.write_bytes(text.encode(layout.encoding))
    cols = ", ".join(layout.fields)
    with transaction.atomic():
        results._stage(path, layout, "test_stage")
        with connection.cursor() as cur:
            cur.execute(f"SELECT line_no, COALESCE(raw, concat_ws(%s, {cols})), err, {cols} "
                        "FROM test_stage ORDER BY line_no", [layout.delimiter])
            rows = [(n, as_read(raw, layout.delimiter), *rest) for n, raw, *rest in cur.fetchall()]
        transaction.set_rollback(True)
    return rows


HEADER = ",".join(FIELDS) + "\n"
PLAIN = "".join(f"D{i},{i}.00,SUCCESS,00,交易成功,2026-12-01,UP{i}\n" for i in range(1, 400))


@pytest.mark.parametrize("name, text, layout", [
    ("plain blocks", HEADER + PLAIN, LAYOUT),
    ("crlf and empty quoted values", (HEADER + PLAIN.replace(",UP7\n", ',""\n')).replace("\n", "\r\n"), LAYOUT),
    ("a value over two lines mid-file", HEADER + PLAIN[:5000] + 'DX,1.00,FAILED,51,"多\n行, 信息",,\n' + PLAIN[5000:],
     LAYOUT),
    ("spaces and an ideographic space around values", HEADER + PLAIN[:3000] + " DS , 1.00,FAILED,51,余额不足\u3000,,\n"
     + "DT,2.00,FAILED,51,Insufficient funds,,\n" + PLAIN[3000:], LAYOUT),
    ("blank lines, a short row, a trailer", HEADER + PLAIN[:4000] + "\n   \nDB,1.00,SUCCESS\nTOTAL,399,1\n"
     + PLAIN[4000:], dataclasses.replace(LAYOUT, trailer={"prefix": "TOTAL"})),
    ("tabs and backslashes", HEADER + PLAIN[:2000] + "DT,1.00,FAILED,51,a\tb\\c,,\n" + PLAIN[2000:], LAYOUT),
    ("columns in another order", ",".join(reversed(FIELDS)) + "\n" + PLAIN[:3000], LAYOUT),
    ("pipe-delimited GB18030", HEADER.replace(",", "|") + PLAIN.replace(",", "|"),
     dataclasses.replace(LAYOUT, delimiter="|", encoding="gb18030")),
])
def test_staged_rows_are_what_csv_reads(name, text, layout, tmp_path, monkeypatch):
    monkeypatch.setattr(results, "STAGE_BLOCK", 1000)  # many blocks, so that block boundaries are crossed
    expected = what_csv_reads(text, layout)
    if name == "columns in another order":
        # the staged values are in the profile's order; the reference reads them in the file's
        expected = [(n, raw, err, *reversed(vals)) for n, raw, err, *vals in expected]
    assert staged(text, layout, tmp_path) == expected


VALUE = st.text(alphabet=st.sampled_from(list('ab1 ,"\n\r\t\\\u3000余额')), max_size=6)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(VALUE, min_size=7, max_size=7), min_size=1, max_size=40),
       crlf=st.booleans(), block=st.integers(min_value=40, max_value=400))
def test_any_file_stages_as_csv_reads_it(rows, crlf, block, tmp_path, monkeypatch):
    monkeypatch.setattr(results, "STAGE_BLOCK", block)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if crlf else "\n").writerows([list(FIELDS), *rows])
    text = out.getvalue()
    assert staged(text, LAYOUT, tmp_path) == what_csv_reads(text, LAYOUT)


def two_debits_sent(ref_data, tmp_path, settings) -> tuple:
    """The std channel and the two debits of a batch built and exported for two loans."""
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    for i in range(1, 3):
        make_loan(i, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "out.csv")
    return channel, debits_of(batch)


def test_a_row_with_a_nul_byte_is_an_exception_and_the_rest_applies(ref_data, notices, tmp_path, settings):
    channel, d = two_debits_sent(ref_data, tmp_path, settings)
    ok = code_for(channel, "success")
    data = result_file(channel, [(d[0].reference, d[0].amount, "succeeded", ok, "ok", FIRST_DUE),
                                 (d[1].reference, d[1].amount, "failed", "64", "bad\x00byte", None)])
    summary = results.import_debit_results(data, channel=channel)
    assert summary["status"] == "processed" and summary["succeeded"] == 1 and summary["exceptions"] == 1
    exc = ReconciliationException.objects.get()
    assert exc.line_no == 3 and exc.reason_code == "bad_row" and "NUL byte" in exc.reason
    assert exc.raw_text.startswith(d[1].reference) and "\x00" not in exc.raw_text
    assert Debit.objects.get(pk=d[0].pk).status == "succeeded"
    assert Debit.objects.get(pk=d[1].pk).status == "submitted"
    assert Decimal(summary["succeeded_amount"]) == d[0].amount


def test_an_exception_shows_its_line_as_written_quotes_and_all(ref_data, notices, tmp_path, settings):
    """A value quoted because it holds the delimiter stays quoted in the exception's raw text: joined without
    its quotes, "12,3x" read as two columns, and the person fixing the row saw a line the bank never sent."""
    channel, d = two_debits_sent(ref_data, tmp_path, settings)
    data = result_file(channel, [(d[0].reference, d[0].amount, "succeeded", code_for(channel, "success"), "ok",
                                  FIRST_DUE),
                                 (d[1].reference, "12,3x", "failed", "64", "余额不足, 请充值", None)])
    summary = results.import_debit_results(data, channel=channel)
    assert summary["succeeded"] == 1 and summary["exceptions"] == 1
    exc = ReconciliationException.objects.get()
    line = data.decode(channel.profile["result_file"].get("encoding", "utf-8")).splitlines()[2]
    assert '"12,3x"' in line  # the file quotes it (csv.writer)
    assert (exc.line_no, exc.reason_code, exc.raw_text) == (3, "bad_amount", line)
