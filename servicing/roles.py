"""Staff roles as Django groups, and the permission matrix (docs/permissions.md) in one place.

Each role is a group; `ensure_roles()` grants it the permissions of `MATRIX` (idempotent). Capabilities beyond per-model view/add/change/delete are the
`console.*` permissions declared in `console.models.CAPABILITIES`.
"""

from __future__ import annotations

OPERATIONS = "operations"
COLLECTOR = "collector"
SUPERVISOR = "supervisor"
AUDITOR = "auditor"
ADMIN = "admin"
ROLES = (OPERATIONS, COLLECTOR, SUPERVISOR, AUDITOR, ADMIN)

# Capabilities (app_label.codename) per role. "view:*" = every view_ permission of every app;
# "view:<app>" = view_ permissions of that app; "all" = every permission.
VIEW_ALL = "view:*"
ALL = "all"

_OPS_PAGES = "console.view_console_operations"
_RISK_PAGES = "console.view_console_risk"
_COLL_PAGES = "console.view_console_collections"
PERSONAL = "console.view_personal_data"

MATRIX: dict[str, set[str]] = {
    OPERATIONS: {
        VIEW_ALL, _OPS_PAGES, _RISK_PAGES, PERSONAL,
        "console.book_loan", "console.post_payment", "console.manage_mandate", "console.upload_debit_results",
        "console.resolve_exception", "console.request_approval", "console.export_data",
    },
    COLLECTOR: {
        "servicing.view_loan", "servicing.view_borrower", "servicing.view_instalment", "servicing.view_payment",
        "servicing.view_mandate", "view:collections_app", "add:collections_app", "change:collections_app",
        _COLL_PAGES, PERSONAL, "console.request_approval", "console.view_approvalrequest",
    },
    SUPERVISOR: {
        VIEW_ALL, _OPS_PAGES, _RISK_PAGES, _COLL_PAGES, PERSONAL,
        "console.resolve_exception", "console.request_approval", "console.approve_approval", "console.export_data",
    },
    AUDITOR: {VIEW_ALL, _OPS_PAGES, _RISK_PAGES, _COLL_PAGES, "console.export_data"},  # read-only, masked
    ADMIN: {ALL},
}


def has_role(user, *roles: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=roles).exists()


def role_permissions(role: str):
    """The Permission rows a role holds according to MATRIX."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    from console.models import CAPABILITIES

    capabilities = [c for c, _label in CAPABILITIES]
    q = Q(pk__in=[])
    for item in MATRIX[role]:
        if item == ALL:
            return Permission.objects.all()
        if item == VIEW_ALL:  # model view permissions only, not the console capabilities named view_…
            q |= Q(codename__startswith="view_") & ~Q(content_type__app_label="console", codename__in=capabilities)
        elif ":" in item:
            verb, app = item.split(":", 1)
            q |= Q(codename__startswith=f"{verb}_", content_type__app_label=app)
        else:
            app, codename = item.split(".", 1)
            q |= Q(codename=codename, content_type__app_label=app)
    return Permission.objects.filter(q)


def ensure_roles() -> None:
    """Create the groups and grant each one the matrix's permissions (re-runnable; adds, never removes,
    so permissions other apps grant in their own ensure functions stay)."""
    from django.contrib.auth.models import Group

    for name in ROLES:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*role_permissions(name))
