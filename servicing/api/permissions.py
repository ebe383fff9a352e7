"""Per-role API permissions: each endpoint names the permission it needs (the matrix: docs/permissions.md)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

_CACHE: dict[tuple[str, ...], type[BasePermission]] = {}


def require(*perms: str) -> type[BasePermission]:
    """A permission class allowing authenticated users holding every one of `perms`."""
    key = tuple(perms)
    if key not in _CACHE:
        class Required(BasePermission):
            required = key
            message = f"your role may not do this (needs {', '.join(key)})"

            def has_permission(self, request, view):
                user = request.user
                return bool(user and user.is_authenticated and user.is_active and user.has_perms(self.required))

        Required.__name__ = "Require_" + "_".join(p.split(".")[-1] for p in key)
        _CACHE[key] = Required
    return _CACHE[key]


VIEW_LOANS = require("servicing.view_loan")
BOOK_LOAN = require("console.book_loan")
POST_PAYMENT = require("console.post_payment")
MANAGE_MANDATE = require("console.manage_mandate")
UPLOAD_RESULTS = require("console.upload_debit_results")
PERSONAL_DATA = require("console.view_personal_data")
REQUEST_APPROVAL = require("console.request_approval")
APPROVE_APPROVAL = require("console.approve_approval")
VIEW_APPROVALS = require("console.view_approvalrequest")
