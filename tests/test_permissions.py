"""The permission matrix (docs/permissions.md): every role × every console/admin page and API endpoint."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.test_api_fixtures import *  # noqa: F403
from tests.test_api_fixtures import ROLE_NAMES, api_as

pytestmark = pytest.mark.django_db

OP, C, S, A, AD = "operations", "collector", "supervisor", "auditor", "admin"
ALL = {OP, C, S, A, AD}

# (method, path template, allowed roles) — a refused role gets 403; an allowed one anything but 401/403.
API = [
    ("get", "/api/v1/loans/", ALL),
    ("get", "/api/v1/loans/{c}/", ALL),
    ("get", "/api/v1/loans/{c}/payoff-quote/?date=2026-03-01", ALL),
    ("get", "/api/v1/loans/{c}/borrower/", ALL),
    ("get", "/api/v1/loans/{c}/borrower/?reveal=true", {OP, C, S, AD}),
    ("post", "/api/v1/loans/", {OP, AD}),
    ("post", "/api/v1/payments/", {OP, AD}),
    ("post", "/api/v1/mandates/", {OP, AD}),
    ("post", "/api/v1/mandates/NOPE/cancel/", {OP, AD}),
    ("post", "/api/v1/debit-results/", {OP, AD}),
    ("get", "/api/v1/approvals/", ALL),
    ("post", "/api/v1/approvals/", {OP, C, S, AD}),
    ("post", "/api/v1/approvals/999999/approve/", {S, AD}),
    ("post", "/api/v1/approvals/999999/reject/", {S, AD}),
]

OPS_PAGES = {OP, S, A, AD}
PAGES = [
    ("get", "/admin/console/", ALL),
    ("get", "/admin/console/debit-run/", OPS_PAGES),
    ("get", "/admin/console/reconciliation/", OPS_PAGES),
    ("get", "/admin/console/missed-debits/", OPS_PAGES),
    ("get", "/admin/console/incidents/", OPS_PAGES),
    ("get", "/admin/console/mandate-cancellations/", OPS_PAGES),
    ("get", "/admin/console/dpd/", OPS_PAGES),
    ("get", "/admin/console/settlement-notices/", OPS_PAGES),
    ("get", "/admin/console/promises/", {C, S, A, AD}),
    ("get", "/admin/console/complaints/", {C, S, A, AD}),
    ("get", "/admin/console/dpd/?export=csv", {OP, S, A, AD}),
    ("get", "/admin/console/promises/?export=xlsx", {S, A, AD}),
    ("post", "/admin/console/reconciliation/", {OP, S, AD}),
    ("post", "/admin/console/missed-debits/", {OP, S, AD}),
    ("get", "/admin/console/approvalrequest/", ALL),
    ("get", "/admin/servicing/loan/", ALL),
    ("get", "/admin/servicing/borrower/", ALL),
    ("get", "/admin/servicing/journalentry/", OPS_PAGES),
    ("get", "/admin/servicing/auditlog/", OPS_PAGES),
    ("get", "/admin/servicing/loanproduct/", OPS_PAGES),
    ("get", "/admin/servicing/incident/add/", {OP, S, AD}),  # open a channel incident by hand
]


def _api_outcome(client, method, path):
    r = getattr(client, method)(path, {} if method == "post" else None, **({"format": "json"} if method == "post" else {}))
    return r.status_code, r


def _page_outcome(client, method, path):
    r = client.get(path) if method == "get" else client.post(path, {"note": "", "ids": []})
    return r.status_code, r


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_permission_matrix(role_users, loan, role):
    """One role against every API endpoint and console/admin page (setup is costly, so one test per role
    checks all rows and reports every mismatch at once)."""
    wrong = []
    api_client = api_as(role_users[role])
    for method, path, allowed in API:
        code, r = _api_outcome(api_client, method, path.format(c=loan.contract_no))
        ok = (code not in (401, 403) and code < 500) if role in allowed else (
            code == 403 and set(r.json()) == {"error", "field"})
        if not ok:
            wrong.append((method, path, "allowed" if role in allowed else "refused", code))
    client = Client()
    client.force_login(role_users[role])
    for method, path, allowed in PAGES:
        code, r = _page_outcome(client, method, path)
        if role in allowed:
            ok = code == 200 or (code == 302 and "/login/" not in r["Location"])
        else:
            ok = code == 403
        if not ok:
            wrong.append((method, path, "allowed" if role in allowed else "refused", code))
    assert not wrong, wrong


def test_incident_bulk_waiver_is_requested_by_a_maker_and_approved_by_a_checker(role_users, loan):
    """Operations open the incident and request the waiver; only a role that approves (复核) is offered the
    approval, and the service still refuses the maker approving their own request."""
    from servicing.models import Channel, Incident

    def client_as(role):
        c = Client()
        c.force_login(role_users[role])
        return c

    def actions(client):
        return client.get("/admin/servicing/incident/").context["action_form"].fields["action"].choices

    ops, supervisor = client_as(OP), client_as(S)
    r = ops.post("/admin/servicing/incident/add/", {"channel": Channel.objects.get(code="std").pk,
                                                   "window_start": "2026-02-01", "title": "银行系统维护",
                                                   "affected-TOTAL_FORMS": "0", "affected-INITIAL_FORMS": "0"})
    assert r.status_code == 302
    incident = Incident.objects.get(title="银行系统维护")
    assert incident.opened_by == role_users[OP]
    assert "approve_waiver" not in dict(actions(ops)) and "request_waiver" in dict(actions(ops))
    assert "approve_waiver" in dict(actions(supervisor))
    assert "request_waiver" not in dict(actions(client_as(A)))  # the auditor reads only
    ops.post("/admin/servicing/incident/", {"action": "request_waiver", "_selected_action": [incident.pk]})
    ops.post("/admin/servicing/incident/", {"action": "approve_waiver", "_selected_action": [incident.pk]})
    incident.refresh_from_db()
    assert incident.waiver_requested_by == role_users[OP] and incident.waiver_approved_at is None
    supervisor.post("/admin/servicing/incident/", {"action": "approve_waiver", "_selected_action": [incident.pk]})
    incident.refresh_from_db()
    assert incident.waiver_approved_by == role_users[S]


@pytest.mark.parametrize("path", ["/api/v1/loans/", "/api/v1/payments/", "/api/v1/approvals/"])
def test_api_anonymous_refused(reference, path):
    assert api_as(None).get(path).status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/certificates/NOPE/"])
def test_public_endpoints_need_no_token(reference, path):
    assert api_as(None).get(path).status_code == 404  # reaches the view: unknown code


def test_matrix_doc_lists_every_role_and_capability():
    from pathlib import Path

    from console.models import CAPABILITIES

    doc = (Path(__file__).resolve().parent.parent / "docs" / "permissions.md").read_text(encoding="utf-8")
    for role in ROLE_NAMES:
        assert role in doc
    for codename, _label in CAPABILITIES:
        assert codename in doc, codename
