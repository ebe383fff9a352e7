"""The ops console: every model reachable, searches, read-only ledger, money format, masking, cheap counts.

Faking a big table: ``EstimatedCountPaginator`` asks ``servicing.admin_utils.estimated_row_count`` for the
planner's estimate (``pg_class.reltuples``); the tests patch that function to return 2,000,000 instead of
loading millions of rows, then check that no unfiltered ``SELECT COUNT(*)`` reached the table.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from servicing.admin_utils import (
    ESTIMATE_THRESHOLD,
    PERSONAL_DATA_PERMISSION,
    EstimatedCountPaginator,
    can_see_personal_data,
    estimated_row_count,
    money_display,
)
from servicing.models import (
    Allocation,
    AuditLog,
    Borrower,
    BusinessCalendarDay,
    BusinessDayRun,
    Channel,
    Instalment,
    JournalEntry,
    JournalLine,
    Loan,
    LoanProduct,
    Mandate,
    Payment,
)
from servicing.services.calendar import calendar_cache_clear, seed_calendar

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
SERVICING_MODELS = [LoanProduct, Borrower, Loan, Instalment, Mandate, Payment, Allocation, JournalEntry,
                    JournalLine, Channel, BusinessCalendarDay, AuditLog, BusinessDayRun]
LEDGER_MODELS = [JournalEntry, JournalLine, Allocation, Payment, AuditLog, BusinessDayRun]
BIG_TABLES = [Loan, Instalment, JournalEntry, JournalLine, Allocation, Payment, Mandate, Borrower, AuditLog]


# --------------------------------------------------------------------------------------------------
# Fixtures: a small "world" per loan, created with the ORM
# --------------------------------------------------------------------------------------------------

def make_product() -> LoanProduct:
    product, _ = LoanProduct.objects.get_or_create(code="car-36", defaults=dict(
        name="车贷 36 期", kind="car", schedule_method="equal_instalment", annual_rate_pct=Decimal("6.0000"),
        fee_rate_pct=Decimal("0"), max_months=60, penalty_markup_pct=Decimal("50")))
    return product


def make_world(i: int, *, product: LoanProduct | None = None) -> dict:
    """One borrower with one loan, two instalments, a mandate, a disbursement and a payment (balanced)."""
    product = product or make_product()
    channel, _ = Channel.objects.get_or_create(code="icbc", defaults={"name": "工商银行代扣"})
    borrower = Borrower.objects.create(name=f"张{'三四五六七八九'[i % 7]}{i}", id_number=f"11010119900307{i:04d}",
                                       phone=f"1380013{i:04d}")
    loan = Loan.objects.create(contract_no=f"HT2026{i:06d}", product=product, borrower=borrower,
                               principal=Decimal("1234.56"), annual_rate_pct=Decimal("6"),
                               fee_rate_pct=Decimal("0"), schedule_method="equal_instalment", term_months=2,
                               disbursed_on=date(2026, 1, 15), repayment_day=15,
                               credit_balance=Decimal("0.00"))
    inst1 = Instalment.objects.create(loan=loan, seq=1, period_start=date(2026, 1, 15), due_date=date(2026, 2, 15),
                                      principal_due=Decimal("615.74"), interest_due=Decimal("6.17"),
                                      billed=True)
    inst2 = Instalment.objects.create(loan=loan, seq=2, period_start=date(2026, 2, 15), due_date=date(2026, 3, 15),
                                      principal_due=Decimal("618.82"), interest_due=Decimal("3.09"))
    mandate = Mandate.objects.create(agreement_no=f"DK2026{i:06d}", borrower=borrower, loan=loan, channel=channel,
                                     account_no=f"622202000012{i:04d}", account_name=borrower.name,
                                     bank_code="ICBC", status="active",
                                     signed_at=datetime(2026, 1, 10, 10, 0, tzinfo=SHANGHAI))
    disbursement = JournalEntry.objects.create(kind="disbursement", loan=loan, value_date=date(2026, 1, 15),
                                               idempotency_key=f"disburse:{loan.contract_no}")
    JournalLine.objects.bulk_create([
        JournalLine(entry=disbursement, loan=loan, account="principal_receivable", amount=Decimal("1234.56")),
        JournalLine(entry=disbursement, loan=loan, account="disbursement_clearing", amount=Decimal("-1234.56")),
    ])
    pay_entry = JournalEntry.objects.create(kind="payment", loan=loan, value_date=date(2026, 2, 15),
                                            idempotency_key=f"payment:PAY{i:06d}")
    JournalLine.objects.bulk_create([
        JournalLine(entry=pay_entry, loan=loan, account="clearing_bank", amount=Decimal("6.17")),
        JournalLine(entry=pay_entry, loan=loan, account="interest_receivable", amount=Decimal("-6.17")),
    ])
    payment = Payment.objects.create(reference=f"PAY{i:06d}", loan=loan, channel="bank", amount=Decimal("6.17"),
                                     value_date=date(2026, 2, 15), applied_amount=Decimal("6.17"),
                                     entry=pay_entry)
    allocation = Allocation.objects.create(entry=pay_entry, payment=payment, instalment=inst1,
                                           interest=Decimal("6.17"))
    audit = AuditLog.objects.create(actor_label="system", action="payment.applied", object_type="loan",
                                    object_id=str(loan.pk), reason="test", data={"reference": payment.reference})
    run = BusinessDayRun.objects.create(business_date=date(2026, 2, 15 + i % 10), step=f"accrual-{i}",
                                        stats={"loans": 1})
    day, _ = BusinessCalendarDay.objects.get_or_create(
        date=date(2026, 2, 14), defaults=dict(is_working_day=True, name="春节调休上班", source="chinesecalendar"))
    return {
        LoanProduct: product, Channel: channel, Borrower: borrower, Loan: loan, Instalment: inst1,
        Mandate: mandate, JournalEntry: disbursement, JournalLine: disbursement.lines.first(), Payment: payment,
        Allocation: allocation, AuditLog: audit, BusinessDayRun: run, BusinessCalendarDay: day,
        "instalments": [inst1, inst2],
    }


@pytest.fixture(autouse=True)
def _fresh_calendar_cache():
    """An empty calendar table (a data migration may have seeded it) and a cold per-process cache."""
    BusinessCalendarDay.objects.all().delete()
    calendar_cache_clear()
    yield
    calendar_cache_clear()


@pytest.fixture
def world():
    return make_world(1)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="ops-lead", password=None,
                                                      email="lead@example.com")


@pytest.fixture
def ops(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def staff_factory(django_user_model, client):
    """A staff user with exactly the given servicing permissions, logged in."""

    def make(*perms: str):
        """perms: "codename" (servicing) or "app_label.codename"."""
        user = django_user_model.objects.create_user(username=f"staff-{'-'.join(perms)}"[:150],
                                                     password=None, is_staff=True)
        for perm in perms:
            app_label, codename = perm.split(".") if "." in perm else ("servicing", perm)
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                             codename=codename))
        client.force_login(user)
        return client

    return make


def url(model, view: str, *args) -> str:
    return reverse(f"admin:servicing_{model._meta.model_name}_{view}", args=args)


def text(response) -> str:
    return response.content.decode()


# --------------------------------------------------------------------------------------------------
# Every model reachable
# --------------------------------------------------------------------------------------------------

EVENT_MODELS = ["LoanProductEvent", "LoanEvent", "InstalmentEvent", "MandateEvent"]


def test_every_servicing_model_is_registered():
    for model in SERVICING_MODELS + [apps.get_model("servicing", name) for name in EVENT_MODELS]:
        assert model in admin.site._registry, f"{model.__name__} has no admin"
    assert admin.site.site_header == "RepayDesk 运营后台"


@pytest.mark.parametrize("model", SERVICING_MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_open(ops, world, model):
    response = ops.get(url(model, "changelist"))
    assert response.status_code == 200
    assert "RepayDesk 运营后台" in text(response)
    response = ops.get(url(model, "change", world[model].pk))
    assert response.status_code == 200


@pytest.mark.parametrize("name", EVENT_MODELS)
def test_history_pages_open(ops, world, name):
    model = apps.get_model("servicing", name)
    assert ops.get(url(model, "changelist")).status_code == 200
    event = model.objects.order_by("-pk").first()
    if event is not None:
        assert ops.get(url(model, "change", event.pk)).status_code == 200


def test_admin_index_lists_servicing(ops):
    response = ops.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "贷款" in text(response)


# --------------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("term", ["HT2026000001", "2026000001", "张四1", "13800130001", "0013000"])
def test_loan_search_by_contract_name_or_phone(ops, world, term):
    make_world(2)
    response = ops.get(url(Loan, "changelist"), {"q": term})
    assert response.status_code == 200
    body = text(response)
    assert "HT2026000001" in body
    if term != "0013000":  # a phone fragment common to both borrowers finds both
        assert "HT2026000002" not in body


@pytest.mark.parametrize("model", [Instalment, Mandate, Payment], ids=lambda m: m.__name__)
def test_related_lists_search_by_contract_and_borrower(ops, world, model):
    other = make_world(2)
    for term in ("HT2026000002", other[Borrower].name, other[Borrower].phone):
        response = ops.get(url(model, "changelist"), {"q": term})
        assert response.status_code == 200
        body = text(response)
        assert "HT2026000002" in body or "DK2026000002" in body or "PAY000002" in body, (model, term)
        assert "HT2026000001" not in body and "PAY000001" not in body and "DK2026000001" not in body


def test_borrower_search_id_number_is_exact(ops, world):
    borrower = world[Borrower]
    found = ops.get(url(Borrower, "changelist"), {"q": borrower.id_number})
    assert f'href="{url(Borrower, "change", borrower.pk)}' in text(found)
    partial = ops.get(url(Borrower, "changelist"), {"q": borrower.id_number[:10]})
    assert f'href="{url(Borrower, "change", borrower.pk)}' not in text(partial)


def test_search_help_text_is_shown(ops, world):
    assert "按合同号、借款人姓名或手机号搜索" in text(ops.get(url(Loan, "changelist")))


# --------------------------------------------------------------------------------------------------
# Ledger read-only, loans not added or deleted
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", LEDGER_MODELS + [Instalment], ids=lambda m: m.__name__)
def test_ledger_refuses_add_change_delete(ops, superuser, world, model):
    obj = world[model]
    assert ops.get(url(model, "add")).status_code == 403
    assert ops.post(url(model, "add"), {}).status_code == 403
    assert ops.get(url(model, "delete", obj.pk)).status_code == 403
    assert ops.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert ops.post(url(model, "change", obj.pk), {}).status_code == 403
    change_page = text(ops.get(url(model, "change", obj.pk)))
    assert 'name="_save"' not in change_page
    assert 'class="deletelink"' not in change_page
    changelist = text(ops.get(url(model, "changelist")))
    assert url(model, "add") not in changelist
    assert 'name="action"' not in changelist  # no bulk delete either
    model_admin = admin.site._registry[model]
    request = mock.Mock(user=superuser)  # even a superuser
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, obj)
    assert not model_admin.has_delete_permission(request, obj)


def test_journal_is_still_intact_after_the_attempts(ops, world):
    entry = world[JournalEntry]
    ops.post(url(JournalEntry, "delete", entry.pk), {"post": "yes"})
    ops.post(url(JournalLine, "change", world[JournalLine].pk), {"amount": "1"})
    assert JournalLine.objects.filter(entry=entry).count() == 2
    assert world[JournalLine].amount == JournalLine.objects.get(pk=world[JournalLine].pk).amount


def test_loan_cannot_be_added_or_deleted_and_money_is_read_only(ops, world):
    loan = world[Loan]
    assert ops.get(url(Loan, "add")).status_code == 403
    assert ops.get(url(Loan, "delete", loan.pk)).status_code == 403
    page = text(ops.get(url(Loan, "change", loan.pk)))
    assert 'name="principal"' not in page and 'name="credit_balance"' not in page
    assert "¥1,234.56" in page
    # inlines are read-only: schedule, mandate and payment shown, nothing to add or delete
    assert "¥615.74" in page and "DK2026000001" in page and "PAY000001" in page
    assert "instalments-TOTAL_FORMS" in page
    assert 'name="instalments-0-principal_due"' not in page
    # a POST cannot change anything
    ops.post(url(Loan, "change", loan.pk), {"principal": "1", "contract_no": "X"})
    loan.refresh_from_db()
    assert loan.principal == Decimal("1234.56") and loan.contract_no == "HT2026000001"


def test_mandate_only_limits_are_editable(ops, world):
    mandate = world[Mandate]
    page = text(ops.get(url(Mandate, "change", mandate.pk)))
    assert 'name="single_limit"' in page and 'name="status"' not in page and 'name="account_no"' not in page
    assert ops.get(url(Mandate, "add")).status_code == 403


# --------------------------------------------------------------------------------------------------
# Money format
# --------------------------------------------------------------------------------------------------

def test_money_is_formatted_on_the_loan_changelist(ops, world):
    body = text(ops.get(url(Loan, "changelist")))
    assert "¥1,234.56" in body
    assert "¥0.00" in body  # credit balance


def test_money_display_helper():
    col = money_display("principal", "本金")
    assert col(mock.Mock(principal=Decimal("1234567.8"))) == "¥1,234,567.80"
    assert col(None, mock.Mock(principal=Decimal("-5"))) == "-¥5.00"  # as a ModelAdmin method
    assert col.short_description == "本金" and col.admin_order_field == "principal"
    assert getattr(money_display("total_paid", "x", ordering=False), "admin_order_field", None) is None


def test_journal_lines_show_debit_and_credit(ops, world):
    body = text(ops.get(url(JournalEntry, "change", world[JournalEntry].pk)))
    assert body.count("¥1,234.56") == 2  # once as debit, once as credit (shown positive)
    assert "-¥1,234.56" not in body


def test_an_entry_with_many_lines_sums_them_per_account_and_links_to_them(ops, world, monkeypatch):
    """An entry a bank file's chunk shares holds tens of thousands of lines: its page must not render each."""
    from servicing.admin import JournalEntryAdmin

    entry = world[JournalEntry]
    monkeypatch.setattr(JournalEntryAdmin, "MAX_INLINE_LINES", 1)
    body = text(ops.get(url(JournalEntry, "change", entry.pk)))
    assert "1 行，借方 ¥1,234.56" in body and "1 行，贷方 ¥1,234.56" in body
    link = url(JournalLine, "changelist") + f"?entry__id__exact={entry.pk}"
    assert link.replace("&", "&amp;") in body and "查看全部 2 行" in body
    lines = ops.get(link)
    assert lines.status_code == 200 and text(lines).count("¥1,234.56") == 2
    monkeypatch.setattr(JournalEntryAdmin, "MAX_INLINE_LINES", 100)
    assert "查看全部" not in text(ops.get(url(JournalEntry, "change", entry.pk)))  # a small entry lists its lines


# --------------------------------------------------------------------------------------------------
# Personal data
# --------------------------------------------------------------------------------------------------

def test_lists_mask_personal_data(ops, world):
    borrower, mandate = world[Borrower], world[Mandate]
    body = text(ops.get(url(Borrower, "changelist")))
    assert borrower.masked_phone in body and borrower.phone not in body
    assert borrower.masked_id_number in body and borrower.id_number not in body
    body = text(ops.get(url(Mandate, "changelist")))
    assert mandate.masked_account in body and mandate.account_no not in body
    body = text(ops.get(url(Loan, "changelist")))
    assert borrower.phone not in body


def test_change_pages_show_full_data_to_permitted_users(ops, world):
    borrower, mandate = world[Borrower], world[Mandate]
    assert borrower.phone in text(ops.get(url(Borrower, "change", borrower.pk)))
    assert borrower.id_number in text(ops.get(url(Borrower, "change", borrower.pk)))
    assert mandate.account_no in text(ops.get(url(Mandate, "change", mandate.pk)))


def test_change_pages_mask_for_users_without_the_permission(staff_factory, world):
    mandate = world[Mandate]
    client = staff_factory("view_mandate", "change_mandate")
    page = text(client.get(url(Mandate, "change", mandate.pk)))
    assert mandate.account_no not in page and mandate.masked_account in page
    # saving the limits does not touch (or blank) the hidden account number
    response = client.post(url(Mandate, "change", mandate.pk), {"single_limit": "5000.00", "daily_limit": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    mandate.refresh_from_db()
    assert mandate.account_no == "6222020000120001" and mandate.single_limit == Decimal("5000.00")


def test_can_see_personal_data_needs_the_capability(django_user_model):
    viewer = django_user_model.objects.create_user(username="viewer", password=None, is_staff=True)
    auditor = django_user_model.objects.create_user(username="auditor", password=None, is_staff=True)
    app_label, codename = PERSONAL_DATA_PERMISSION.split(".")
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    auditor.user_permissions.add(Permission.objects.get(content_type__app_label="servicing",
                                                        codename="view_borrower"))
    viewer = django_user_model.objects.get(pk=viewer.pk)  # fresh permission cache
    assert can_see_personal_data(mock.Mock(user=viewer))
    assert not can_see_personal_data(mock.Mock(user=auditor))  # may open borrowers, but masked


def test_borrower_page_is_masked_for_an_auditor_and_full_views_are_logged(staff_factory, world):
    borrower = world[Borrower]
    auditor = staff_factory("view_borrower")
    page = text(auditor.get(url(Borrower, "change", borrower.pk)))
    assert borrower.phone not in page and borrower.masked_phone in page
    assert borrower.id_number not in page and borrower.masked_id_number in page
    assert not AuditLog.objects.filter(action="personal_data.view").exists()

    ops_user = staff_factory("view_borrower", PERSONAL_DATA_PERMISSION)
    page = text(ops_user.get(url(Borrower, "change", borrower.pk)))
    assert borrower.phone in page and borrower.id_number in page
    log = AuditLog.objects.get(action="personal_data.view")
    assert (log.object_type, log.object_id) == ("servicing.borrower", str(borrower.pk))
    assert log.actor is not None and log.data["fields"] == ["id_number", "phone"]


# --------------------------------------------------------------------------------------------------
# Products: the 24 % constraint as a form error
# --------------------------------------------------------------------------------------------------

def product_form(**overrides) -> dict:
    data = {
        "code": "cash-12", "name": "现金贷 12 期", "kind": "credit_line", "is_active": "on",
        "schedule_method": "equal_instalment", "allowed_methods": "", "annual_rate_pct": "12",
        "fee_rate_pct": "0", "penalty_markup_pct": "50", "min_months": "3", "max_months": "12",
        "grace_days": "3", "holiday_rule": "none", "grace_end_rolls_to_working_day": "on", "auto_debit": "on",
        "allocation_order": "penalty,compound,fee,interest,principal", "prepayment_rule": "allowed",
        "prepayment_fee_pct": "0", "retry_policy": "{}", "collection_strategy": "default", "collateral_label": "",
    }
    data.update(overrides)
    return data


def test_product_above_24_percent_is_a_form_error(ops):
    response = ops.post(url(LoanProduct, "add"), product_form(annual_rate_pct="18"))  # 18 × 1.5 = 27 %
    assert response.status_code == 200
    assert "综合年化成本（含罚息上浮与手续费）不得超过 24%" in text(response)
    assert not LoanProduct.objects.filter(code="cash-12").exists()
    response = ops.post(url(LoanProduct, "add"), product_form(annual_rate_pct="12", fee_rate_pct="0.6"))
    assert "不得超过 24%" in text(response)  # 18 % + 0.6 % × 12 = 25.2 %
    response = ops.post(url(LoanProduct, "add"), product_form(annual_rate_pct="10", penalty_markup_pct="51"))
    assert response.status_code == 200 and "罚息上浮比例须在 0% 到 50% 之间" in text(response)
    assert not LoanProduct.objects.filter(code="cash-12").exists()


def test_product_within_24_percent_is_saved_and_shows_all_in_cost(ops):
    response = ops.post(url(LoanProduct, "add"), product_form(annual_rate_pct="16"))  # exactly 24 %
    assert response.status_code == 302
    product = LoanProduct.objects.get(code="cash-12")
    assert product.all_in_cost_pct == Decimal("24")
    assert "24.00 %" in text(ops.get(url(LoanProduct, "changelist")))
    assert "24.00 %" in text(ops.get(url(LoanProduct, "change", product.pk)))


# --------------------------------------------------------------------------------------------------
# Business calendar
# --------------------------------------------------------------------------------------------------

def test_calendar_warns_about_provisional_years(ops):
    seed_calendar([2026, 2028])
    response = ops.get(url(BusinessCalendarDay, "changelist"))
    body = text(response)
    assert response.status_code == 200
    assert "推测" in body and "2028" in body
    assert "2026、" not in body and "：2028" in body
    # the year filter lists the seeded years and filters by them
    filtered = text(ops.get(url(BusinessCalendarDay, "changelist"), {"year": "2026", "is_working_day__exact": "0",
                                                                      "q": "春节"}))
    assert "2026年2月15日" in filtered or "2026-02-15" in filtered


def test_no_warning_when_every_year_is_official(ops):
    seed_calendar([2026])
    assert "推测（仅周末" not in text(ops.get(url(BusinessCalendarDay, "changelist")))


def test_calendar_edit_becomes_manual_and_survives_reseed(ops):
    seed_calendar([2028])
    d = date(2028, 1, 29)  # a Saturday; suppose the State Council makes it a working day
    response = ops.post(url(BusinessCalendarDay, "change", d.isoformat()),
                        {"is_working_day": "on", "name": "春节调休上班"})
    assert response.status_code == 302
    row = BusinessCalendarDay.objects.get(date=d)
    assert (row.is_working_day, row.source, row.provisional) == (True, "manual", False)
    seed_calendar([2028])
    assert BusinessCalendarDay.objects.get(date=d).source == "manual"


def test_calendar_actions_confirm_a_year(ops):
    seed_calendar([2028])
    ids = [d.isoformat() for d in BusinessCalendarDay.objects.filter(date__year=2028, date__month=1)
           .values_list("date", flat=True)]
    response = ops.post(url(BusinessCalendarDay, "changelist"),
                        {"action": "confirm_days", "_selected_action": ids})
    assert response.status_code == 302
    assert not BusinessCalendarDay.objects.filter(date__year=2028, date__month=1, provisional=True).exists()
    assert BusinessCalendarDay.objects.filter(date__year=2028, provisional=True).exists()
    assert ops.get(url(BusinessCalendarDay, "delete", ids[0])).status_code == 403


# --------------------------------------------------------------------------------------------------
# Big tables: estimated counts, no unfiltered COUNT(*), no N+1
# --------------------------------------------------------------------------------------------------

def _counts_on(table: str, queries) -> list[str]:
    # the portal's prepared statements (session read) are logged without their text: sql is None
    return [q["sql"] for q in queries if q["sql"] and "COUNT(" in q["sql"].upper() and f'"{table}"' in q["sql"]]


def test_big_changelist_uses_the_estimate_not_count(ops, world):
    with mock.patch("servicing.admin_utils.estimated_row_count", return_value=2_000_000) as estimate, \
            CaptureQueriesContext(connection) as ctx:
        response = ops.get(url(JournalLine, "changelist"))
    assert response.status_code == 200
    estimate.assert_called_once()
    counts = _counts_on("servicing_journalline", ctx.captured_queries)
    assert not [sql for sql in counts if " WHERE " not in sql.upper()], counts
    assert "2000000" in text(response)  # "2000000 分录行": the estimate is the displayed total


def test_filtered_changelist_counts_exactly(ops, world):
    with mock.patch("servicing.admin_utils.estimated_row_count", return_value=2_000_000) as estimate, \
            CaptureQueriesContext(connection) as ctx:
        response = ops.get(url(JournalLine, "changelist"), {"q": "HT2026000001"})
    assert response.status_code == 200
    estimate.assert_not_called()
    counts = _counts_on("servicing_journalline", ctx.captured_queries)
    assert counts and all(" WHERE " in sql.upper() for sql in counts)


def test_small_table_counts_exactly(world):
    with mock.patch("servicing.admin_utils.estimated_row_count", return_value=ESTIMATE_THRESHOLD):
        assert EstimatedCountPaginator(JournalLine.objects.order_by("pk"), 50).count == 4
    with mock.patch("servicing.admin_utils.estimated_row_count", return_value=None):
        assert EstimatedCountPaginator(JournalLine.objects.order_by("pk"), 50).count == 4
    with mock.patch("servicing.admin_utils.estimated_row_count", side_effect=RuntimeError("boom")):
        assert EstimatedCountPaginator(JournalLine.objects.order_by("pk"), 50).count == 4


def test_estimated_row_count_reads_pg_class(world):
    with connection.cursor() as cursor:
        cursor.execute('ANALYZE "servicing_journalline"')
    estimate = estimated_row_count(JournalLine)
    assert estimate is not None and estimate >= 0


@pytest.mark.parametrize("model", BIG_TABLES, ids=lambda m: m.__name__)
def test_big_tables_never_show_a_full_count(model):
    model_admin = admin.site._registry[model]
    assert model_admin.show_full_result_count is False
    assert model_admin.paginator is EstimatedCountPaginator


@pytest.mark.parametrize("model", SERVICING_MODELS, ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(ops, model):
    """No N+1: the same number of queries for one world as for three."""
    product = make_product()
    make_world(1, product=product)
    with CaptureQueriesContext(connection) as one:
        assert ops.get(url(model, "changelist")).status_code == 200
    make_world(2, product=product)
    make_world(3, product=product)
    with CaptureQueriesContext(connection) as three:
        assert ops.get(url(model, "changelist")).status_code == 200
    assert len(three) == len(one), [q["sql"] for q in three.captured_queries]


def test_loan_change_page_queries_do_not_grow_with_instalments(ops, world):
    loan = world[Loan]
    with CaptureQueriesContext(connection) as before:
        ops.get(url(Loan, "change", loan.pk))
    for seq in range(3, 13):
        Instalment.objects.create(loan=loan, seq=seq, period_start=date(2026, 3, 15), due_date=date(2026, 4, 15),
                                  principal_due=Decimal("1"))
    with CaptureQueriesContext(connection) as after:
        ops.get(url(Loan, "change", loan.pk))
    assert len(after) == len(before)


@pytest.mark.parametrize("model", BIG_TABLES, ids=lambda m: m.__name__)
def test_big_tables_offer_no_facet_counts(ops, world, model):
    assert "显示计数" not in text(ops.get(url(model, "changelist")))  # no "show counts" toggle
    with CaptureQueriesContext(connection) as ctx:
        assert ops.get(url(model, "changelist"), {"_facets": "True"}).status_code == 200
    assert not [q["sql"] for q in ctx.captured_queries if "FILTER (WHERE" in (q["sql"] or "")]
