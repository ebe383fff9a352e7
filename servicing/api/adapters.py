"""Adapters to services other engineers own. Each one names the function it waits for; until that exists,
the endpoint answers 503 {"error": "… pending …"} and the schema still documents it."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException


class Pending(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "pending"


def import_result_file():
    """servicing.services.debits.results.import_debit_results(source, channel=…, name=…, user=…) -> summary."""
    try:
        from servicing.services.debits.results import import_debit_results as fn
    except ImportError as exc:
        raise Pending("result-file import is pending (servicing.services.debits.results.import_debit_results)") \
            from exc
    return fn


def gateway_callback():
    """servicing.gateway.services.handle_callback(raw_body, headers, gateway=…) -> dict; raises
    SignatureError (403) / GatewayError (400)."""
    try:
        from servicing.gateway.services import GatewayError, SignatureError, handle_callback
    except ImportError as exc:
        raise Pending("gateway callback is pending (servicing.gateway.services.handle_callback)") from exc
    return handle_callback, SignatureError, GatewayError


def certificate_by_code(code: str):
    try:
        from notices.selectors import certificate_by_code as fn
    except ImportError as exc:
        raise Pending("certificate verification is pending (notices.selectors.certificate_by_code)") from exc
    return fn(code)
