"""Two workers racing on the same outbox (real threads, separate connections): each notice is sent once."""

from __future__ import annotations

import threading
from collections import Counter
from unittest import mock

import pytest
from django.db import connection

from notices.backends import memory
from notices.models import InboxMessage, Notice, NoticeStatus
from notices.services.dispatch import dispatch_due
from notices.services.events import notify
from notices.services.templates import ensure_default_templates

from .test_notices_support import at, make_loan, notices_settings, pay

DAY = at(2026, 2, 2, 10, 0)


@pytest.fixture(autouse=True)
def _notices(settings):
    settings.NOTICES = notices_settings(SYNC_TASKS=False, CHUNK=7)
    memory.reset()
    ensure_default_templates()
    yield
    memory.reset()


def race(workers: int = 2) -> list:
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def work():
        try:
            barrier.wait()
            results.append(dispatch_due(now=DAY))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_committed_receipt_sent_once_when_two_workers_race():
    with mock.patch("django.utils.timezone.now", return_value=DAY):
        loan = make_loan()
        pay(loan, "800.00")  # commits (transactional test): enqueues a dispatch task in the ORM broker
        for i in range(40):
            notify("complaint_received", loan=loan, obj=loan.instalments.all()[i % 6], on_date=at(2026, 2, 1 + i // 6).date(),
                   context={"reference": f"T{i}", "deadline": "x"})
    expected = Notice.objects.filter(status=NoticeStatus.QUEUED).count()
    results = race(2) + race(2)  # and again: the second round finds nothing
    counts = Counter(m.notice_id for m in memory.outbox)
    assert counts and max(counts.values()) == 1
    assert sum(counts.values()) + InboxMessage.objects.count() == expected
    assert sum(r.sent for r in results) == expected
    assert Notice.objects.exclude(status=NoticeStatus.SENT).count() == 0
    receipts = [m for m in memory.outbox if Notice.objects.get(pk=m.notice_id).event == "payment_receipt"]
    assert len(receipts) == 1 and "800.00" in receipts[0].body
    assert InboxMessage.objects.filter(notice__event="payment_receipt").count() == 1
