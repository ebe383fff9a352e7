"""schemathesis over the OpenAPI schema (drf-spectacular), against the Django WSGI app in-process:
no 5xx and no response that breaks the schema. Bounded (few examples per operation) to stay < 60 s.

stack.md's trap: calling the WSGI app inside a django_db test closes the test's connection at the end of
each request (request_finished → close_old_connections), so the test disconnects that handler.
"""

from __future__ import annotations

import pytest
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from rest_framework.authtoken.models import Token

from tests.test_api_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db
SKIP: set = set()


@pytest.fixture
def keep_connection():
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_api_conforms_to_its_schema(role_users, loan, keep_connection, settings):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    from config.wsgi import application

    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    token = Token.objects.create(user=role_users["admin"]).key
    headers = {"Authorization": f"Token {token}"}
    failures = []
    seen = 0
    calls = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP or not op.path.startswith("/api/v1/"):
            continue
        seen += 1

        @given(case=op.as_strategy())
        @hsettings(max_examples=6, deadline=None, database=None, derandomize=True,
                   phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck))
        def run(case):
            if "contract_no" in (case.path_parameters or {}) and hash(str(case.query)) % 2:
                case.path_parameters["contract_no"] = loan.contract_no  # reach the real loan too
            response = case.call(headers=headers)
            calls.append(response.status_code)
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except Exception as exc:  # collect, report all at once
                failures.append(f"{case.method} {case.formatted_path} {response.status_code}: {str(exc)[:300]}")

        run()
    assert seen >= 12 and len(calls) >= 5 * seen  # every operation was exercised
    assert 500 not in calls and 200 in calls and 400 in calls
    assert not failures, "\n".join(failures[:10])
