"""Active repayment through the sandbox gateway: signed callback, idempotent, debits follow."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from servicing.gateway import start_gateway_payment
from servicing.gateway.services import get_gateway
from servicing.models import Debit, GatewayPayment, Instalment, Loan, Payment
from servicing.services.debits.batches import create_debit_batch, export_debit_batch
from servicing.services.debits.results import import_debit_results
from servicing.services.verify import verify_books

from .test_debits_support import FIRST_DUE, make_loan, notices_fixture, ref_data_fixture, result_file  # noqa: F401

pytestmark = pytest.mark.django_db


def _signed(order, *, succeeded=True, now=None):
    return get_gateway().build_callback(order, succeeded=succeeded, now=now)


def _post(client, body, headers):
    return client.post("/gateway/callback/sandbox/", data=body, content_type="application/json",
                       headers=headers)


def test_callback_signed_idempotent_and_cancels_planned_debit(ref_data, notices, client, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: FIRST_DUE)
    channel = ref_data["std"]
    loan = make_loan(1, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    debit = Debit.objects.get(batch=batch)
    started = start_gateway_payment(loan, debit.amount, "due")
    assert started["pay_url"].startswith("/gateway/sandbox/pay/")
    order = GatewayPayment.objects.get(out_trade_no=started["out_trade_no"])
    assert client.get(started["pay_url"]).status_code == 200

    body, headers = _signed(order)
    assert _post(client, body + b" ", headers).status_code == 403  # body changed: signature fails
    old = _signed(order, now=time.time() - 3600)
    assert _post(client, *old).status_code == 403  # outside the timestamp window
    r = _post(client, body, headers)
    assert r.status_code == 200 and r.json()["status"] == "paid"
    r2 = _post(client, body, headers)  # the gateway retries its notification
    assert r2.status_code == 200 and r2.json()["duplicate"] is True
    assert Payment.objects.filter(channel="gateway").count() == 1
    assert Debit.objects.get(pk=debit.pk).status == "cancelled"  # planned debit for the paid instalment
    assert Instalment.objects.get(loan=loan, seq=1).status == "paid"
    assert all(r.ok for r in verify_books())


def test_submitted_debit_that_also_succeeds_leaves_credit_balance(ref_data, notices, client, tmp_path, settings,
                                                                   monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: FIRST_DUE)
    settings.MEDIA_ROOT = tmp_path / "media"
    channel = ref_data["std"]
    loan = make_loan(1, channel)
    batch = create_debit_batch(FIRST_DUE, channel).batch
    export_debit_batch(batch, tmp_path / "o.csv")  # the debit is now submitted to the bank
    debit = Debit.objects.get(batch=batch)
    started = start_gateway_payment(loan, debit.amount)
    r = client.post(started["pay_url"], {"action": "pay"})  # the borrower pays on the sandbox page
    assert r.status_code == 200
    assert Debit.objects.get(pk=debit.pk).status == "submitted"  # already at the bank: left alone
    import_debit_results(result_file(channel, [(debit.reference, debit.amount, "succeeded", "00", "ok", FIRST_DUE)]),
                         channel=channel)
    loan = Loan.objects.get(pk=loan.pk)
    assert loan.credit_balance == debit.amount  # visible credit balance, never lost
    assert Payment.objects.count() == 2
    assert all(r.ok for r in verify_books())
    assert Decimal(str(loan.credit_balance)) > 0
