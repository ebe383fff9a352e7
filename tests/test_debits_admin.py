"""The ops console for debits: upload → preview (nothing applied) → confirm; lists render."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from servicing import roles
from servicing.models import Debit, JournalEntry, Payment, ResultFile
from servicing.services.debits.batches import create_debit_batch, export_debit_batch

from .test_debits_support import (  # noqa: F401
    FIRST_DUE,
    debits_of,
    make_loan,
    notices_fixture,
    ref_data_fixture,
    result_file,
)

pytestmark = pytest.mark.django_db


def test_upload_preview_then_confirm(ref_data, notices, client, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    make_loan(1, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "o.csv")
    d = debits_of(batch)[0]
    content = result_file(channel, [(d.reference, d.amount, "succeeded", "00", "ok", FIRST_DUE)])
    # the operations role uploads the bank's files (the same capability as the API); a collector may not
    roles.ensure_roles()
    User = get_user_model()
    collector = User.objects.create_user("c1", password="pw-123456789", is_staff=True)
    collector.groups.add(Group.objects.get(name=roles.COLLECTOR))
    client.force_login(collector)
    assert client.get("/admin/servicing/resultfile/upload/").status_code == 403
    ops = User.objects.create_user("ops1", password="pw-123456789", is_staff=True)
    ops.groups.add(Group.objects.get(name=roles.OPERATIONS))
    client.force_login(ops)
    for url in ("/admin/servicing/debitbatch/", "/admin/servicing/debit/", "/admin/servicing/resultfile/",
                "/admin/servicing/reconciliationexception/", "/admin/servicing/incident/",
                "/admin/servicing/retrystate/", "/admin/servicing/preduewarning/", f"/admin/servicing/debit/{d.pk}/change/"):
        assert client.get(url).status_code == 200, url
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    with open(path, "rb") as fh:
        r = client.post("/admin/servicing/resultfile/upload/", {"channel": channel.pk, "file": fh})
    assert r.status_code == 200 and "processed" in r.content.decode()
    assert not Payment.objects.exists() and Debit.objects.get().status == "submitted"  # preview applied nothing
    assert not ResultFile.objects.exists()
    r = client.post("/admin/servicing/resultfile/upload/", {"channel": channel.pk, "confirm": "1", "name": "r.csv"})
    assert r.status_code == 302
    assert Payment.objects.count() == 1 and ResultFile.objects.get().status == "processed"


def test_demo_seed_shows_failed_debits(ref_data, notices, tmp_path, settings):
    import random
    from datetime import date

    from servicing.demo import DemoContext
    from servicing.models import Incident, MissedDebitException, ReconciliationException
    from servicing.services.debits import demo

    settings.MEDIA_ROOT = tmp_path / "media"
    ctx = DemoContext(as_of=date(2026, 12, 15), rng=random.Random(1))
    demo.seed(ctx)
    assert Debit.objects.filter(status="failed").count() >= 8
    assert Debit.objects.filter(status="unknown").count() == 1
    assert ReconciliationException.objects.filter(status="open").exists()
    assert MissedDebitException.objects.exists() and Incident.objects.exists()
    assert any("batch" in line for line in ctx.lines)
    # the file's payments share one journal entry (批量入账); the returned one's part alone was reversed
    (shared,) = {p.entry for p in Payment.objects.filter(channel="bank")}
    assert shared.loan_id is None and shared.payments.count() >= 3
    returned = Payment.objects.get(reversed=True)
    assert JournalEntry.objects.filter(kind="reversal", idempotency_key=f"reversal:payment:{returned.pk}").exists()
