"""Errors as JSON naming the field at fault: {"error": message, "field": name | null}.

Services raise ValueError subclasses whose message starts with the field ("amount: must be …"); DRF
validation errors carry the field as their key. Both end up in the same shape, with status 400.
"""

from __future__ import annotations

import re

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_\-]*): (.+)$", re.S)


class ServiceRefused(exceptions.APIException):
    """A service said no (BookingError, PaymentError, MandateError, …): 400 naming the field."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "refused"

    def __init__(self, message: str, field: str | None = None):
        if field is None:
            m = _FIELD_PREFIX.match(str(message))
            if m:
                field, message = m.group(1).replace("-", "_"), m.group(2)
        self.field = field
        super().__init__(str(message))


class Conflict(ServiceRefused):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _first(detail, prefix: str | None = None) -> tuple[str | None, str]:
    """The first (field, message) in a DRF error detail (nested dicts give dotted field names)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else None
            field = f"{prefix}.{name}" if prefix and name else (name or prefix)
            return _first(value, field)
        return prefix, "invalid"
    if isinstance(detail, list | tuple):
        return _first(detail[0], prefix) if detail else (prefix, "invalid")
    return prefix, str(detail)


def exception_handler(exc, context):
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound(str(exc) or "not found")
    response = drf_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ServiceRefused):
        field, message = exc.field, str(exc.detail)
    elif isinstance(exc, exceptions.ValidationError):
        field, message = _first(exc.detail)
    else:
        field, message = None, str(getattr(exc, "detail", exc))
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
    return Response({"error": message, "field": field}, status=response.status_code, headers=headers)
